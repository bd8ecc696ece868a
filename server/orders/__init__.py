"""The order service: the front door, backed by the order workflow."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import grpc

from clients.proto.operator.v1 import operator_pb2, operator_pb2_grpc
from clients.proto.orders.v1 import orders_pb2_grpc
from server.core.service import Closer, ServiceSpec
from server.core.services import ORDERS
from server.core.settings import Settings
from server.orders.telemetry import order_id_of


async def _register(server: grpc.aio.Server, settings: Settings, pool: asyncpg.Pool) -> Closer:
    from clients.proto.inventory.v1 import inventory_pb2_grpc
    from clients.proto.payments.v1 import payments_pb2_grpc
    from clients.proto.shipping.v1 import shipping_pb2_grpc
    from server.core.breaker_interceptor import guarded_channels
    from server.core.credentials import caller_credentials
    from server.core.database import create_pool
    from server.core.temporal import connect_temporal, metrics_runtime
    from server.orders.abandoned import AbandonedOrders, Holdings, start_sweeping, stop_sweeping
    from server.orders.admission import Admission, AdmissionLimits
    from server.orders.cache import OrderCache
    from server.orders.changes import OrderChanges
    from server.orders.changing import ChangesOfMind
    from server.orders.events import OrderEvents
    from server.orders.gateway import WorkflowGateway
    from server.orders.health import OrderHealth, start_health_checks, stop_health_checks
    from server.orders.maintenance import start_maintenance, stop_maintenance
    from server.orders.metrics import CountOrdersCreated
    from server.orders.operations import OperatorServicer
    from server.orders.operator_actions import OperatorActions
    from server.orders.page_cache import PageCache
    from server.orders.placing import OrderPlacing
    from server.orders.projection import OrderProjection
    from server.orders.reads import OrderReads
    from server.orders.repository import OrderRepository
    from server.orders.servicer import OrderServicer

    runtime = metrics_runtime(
        f"{settings.metrics_host}:{settings.orders_temporal_metrics_port}",
        port_setting="ORDERS_TEMPORAL_METRICS_PORT",
    )
    temporal = await connect_temporal(
        settings, runtime=runtime, interceptors=[CountOrdersCreated()]
    )
    # Every call of this process to Temporal goes through it.
    workflows = WorkflowGateway(
        temporal,
        task_queue=settings.task_queue,
        wait=timedelta(seconds=settings.order_workflow_wait_seconds),
        task_timeout=timedelta(seconds=settings.order_workflow_task_seconds),
    )
    # The catalog and the payment methods are called as the front door, with
    # its own token or certificate.
    front_door = caller_credentials(settings, "front door")
    # Each with its own circuit breaker: CreateOrder answers UNAVAILABLE at
    # once while a service it needs keeps failing. Shipping is read only, to
    # list what an order holds (abandoned orders, the operators' detail).
    channels = guarded_channels(ORDERS, settings, front_door)
    cache, pages = OrderCache(), PageCache()
    # NOTIFYs come from the primary, where the worker writes.
    events = OrderEvents(settings.database_url_of("orders"), cache, pages)
    events.start()
    upkeep = start_maintenance(pool, settings)
    holdings = Holdings(
        payments=payments_pb2_grpc.PaymentServiceStub(channels["payments"]),
        inventory=inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]),
        shipping=shipping_pb2_grpc.ShippingServiceStub(channels["shipping"]),
    )
    sweeps = start_sweeping(
        AbandonedOrders(
            workflows,
            pool,
            OrderProjection(pool),
            holdings,
            task_queue=settings.task_queue,
        ),
        settings.order_audit_seconds,
    )
    # The gauges the alerts watch (deploy/alerts/), read from the primary.
    health = start_health_checks(OrderHealth(pool), settings.order_audit_seconds)
    admission = Admission(
        AdmissionLimits(
            enabled=settings.admission_enabled,
            customer_order_rate=settings.admission_customer_order_rate,
            order_rate=settings.admission_order_rate,
            customer_in_flight=settings.admission_customer_in_flight,
            in_flight=settings.admission_in_flight,
            max_waiting=settings.admission_max_waiting,
            caller_reads=settings.admission_caller_reads,
            caller_streams=settings.admission_caller_streams,
            streams=settings.admission_streams,
            refresh_seconds=settings.admission_refresh_seconds,
        ),
        pool,
    )
    admission.start()
    replica = None
    if settings.orders_read_url != settings.database_url_of("orders"):
        replica = await create_pool(settings.orders_read_url, max_size=settings.database_pool_max)
    orders = OrderRepository(pool)
    reads = OrderReads(
        orders=orders,
        workflows=workflows,
        events=events,
        cache=cache,
        pages=pages,
        replica=OrderRepository(replica) if replica is not None else None,
    )
    changes = ChangesOfMind(changes=OrderChanges(pool), reads=reads, workflows=workflows)
    placing = OrderPlacing(
        workflows=workflows,
        inventory=inventory_pb2_grpc.InventoryServiceStub(channels["inventory"]),
        payments=payments_pb2_grpc.PaymentServiceStub(channels["payments"]),
        orders=orders,
        projection=OrderProjection(pool),
        events=events,
        tracking_period=timedelta(hours=settings.delivery_tracking_period_hours),
        escalate_after=timedelta(days=settings.delivery_escalation_days),
        admission=admission,
    )
    orders_pb2_grpc.add_OrderServiceServicer_to_server(
        OrderServicer(placing=placing, reads=reads, changes=changes, admission=admission), server
    )
    # The operators' API, on the same server: it reads the primary, and
    # cancels and reads progress the way OrderService does.
    operator_pb2_grpc.add_OperatorServiceServicer_to_server(
        OperatorServicer(
            workflows=workflows,
            orders=OrderRepository(pool),
            actions=OperatorActions(pool),
            holdings=holdings,
            progress=reads.progress,
            cancel=changes.cancel,
        ),
        server,
    )

    async def close() -> None:
        await stop_maintenance(upkeep)
        await stop_sweeping(sweeps)
        await stop_health_checks(health)
        await admission.close()
        await events.close()
        if replica is not None:
            await replica.close()
        for channel in channels.values():
            await channel.close()

    return close


SERVICE = ServiceSpec(
    name="orders",
    full_name="orders.v1.OrderService",
    register=_register,
    order_id_of=order_id_of,
    also_serves=(operator_pb2.DESCRIPTOR.services_by_name["OperatorService"].full_name,),
)
