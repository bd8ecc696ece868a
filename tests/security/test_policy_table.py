"""The per-method table: complete, and saying what the platform promises."""

from __future__ import annotations

import pytest

from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.operator.v1 import operator_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2
from server.core.auth import TABLE, Role, access_for

SERVICES = [
    orders_pb2.DESCRIPTOR.services_by_name["OrderService"],
    payments_pb2.DESCRIPTOR.services_by_name["PaymentService"],
    inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"],
    shipping_pb2.DESCRIPTOR.services_by_name["ShippingService"],
    operator_pb2.DESCRIPTOR.services_by_name["OperatorService"],
]
EVERY_METHOD = [
    f"/{service.full_name}/{method.name}" for service in SERVICES for method in service.methods
]


def test_every_method_of_every_service_has_an_entry() -> None:
    assert set(TABLE) == set(EVERY_METHOD)


@pytest.mark.parametrize("method", EVERY_METHOD)
def test_every_entry_names_at_least_one_role(method: str) -> None:
    assert access_for(method).roles and not access_for(method).public


@pytest.mark.parametrize(
    "method",
    [
        "/payments.v1.PaymentService/Charge",
        "/payments.v1.PaymentService/Refund",
        "/inventory.v1.InventoryService/ReserveStock",
        "/inventory.v1.InventoryService/CommitReservation",
        "/inventory.v1.InventoryService/ReleaseReservation",
        "/shipping.v1.ShippingService/CreateShipment",
        "/shipping.v1.ShippingService/RebookShipment",
        "/shipping.v1.ShippingService/CancelShipment",
    ],
)
def test_only_the_worker_moves_money_stock_and_parcels(method: str) -> None:
    assert access_for(method).roles == {Role.WORKER}


def test_only_an_operator_sets_stock_and_prices() -> None:
    assert access_for("/inventory.v1.InventoryService/SetStock").roles == {Role.OPERATOR}


@pytest.mark.parametrize("name", ["CreateOrder", "GetOrder", "ListOrders", "WatchOrder"])
def test_customer_services_create_read_and_watch_orders(name: str) -> None:
    roles = access_for(f"/orders.v1.OrderService/{name}").roles
    assert roles == {Role.CUSTOMER_SERVICE, Role.OPERATOR}


def test_only_operators_operate() -> None:
    service = operator_pb2.DESCRIPTOR.services_by_name["OperatorService"]
    for method in service.methods:
        assert access_for(f"/{service.full_name}/{method.name}").roles == {Role.OPERATOR}


def test_customer_services_reach_no_internal_service() -> None:
    internal = [m for m in EVERY_METHOD if not m.startswith("/orders.")]
    assert all(Role.CUSTOMER_SERVICE not in access_for(m).roles for m in internal)


def test_health_is_open_reflection_needs_a_caller_and_the_unknown_is_closed() -> None:
    assert access_for("/grpc.health.v1.Health/Check").public
    assert access_for("/grpc.health.v1.Health/Watch").public
    reflection = access_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not reflection.public and reflection.roles == set(Role)
    unknown = access_for("/payments.v1.PaymentService/Transfer")
    assert not unknown.public and not unknown.roles
