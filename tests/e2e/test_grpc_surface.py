"""What grpcurl users see: reflection, health, rich errors, graceful stop; with credentials."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import google.rpc
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.proto.orders.v1 import orders_pb2 as pb
from server.core.auth import Role
from tests.support.binaries import venv_binary
from tests.support.orders import order_request, place, stock_sku, wait_for
from tests.support.stack import Process, Stack

pytestmark = pytest.mark.e2e

SERVICE_NAMES = {
    "orders": "orders.v1.OrderService",
    "payments": "payments.v1.PaymentService",
    "inventory": "inventory.v1.InventoryService",
    "shipping": "shipping.v1.ShippingService",
}


ROOT = Path(__file__).resolve().parents[2]
# Services without reflection are described from the contracts, as README.md shows.
CONTRACTS = {
    "payments": "payments/v1/payments.proto",
    "inventory": "inventory/v1/inventory.proto",
    "shipping": "shipping/v1/shipping.proto",
}


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = venv_binary("grpcurl")
    return subprocess.run(
        [binary, "-plaintext", *args], capture_output=True, text=True, timeout=30, cwd=ROOT
    )


def as_operator(stack: Stack) -> list[str]:
    """grpcurl's flags that send the operator's token, as README.md shows them."""
    token = stack.credentials_folder.token(Role.OPERATOR.value)
    return ["-H", f"authorization: Bearer {token}"]


def contract(name: str) -> list[str]:
    """grpcurl's flags that read a service's contract (and google.rpc's, to decode ErrorInfo)."""
    if name not in CONTRACTS:
        return []
    google_protos = Path(google.rpc.__path__[0]).parents[1]
    return [
        *("-import-path", "protos", "-proto", CONTRACTS[name]),
        *("-import-path", str(google_protos), "-proto", "google/rpc/error_details.proto"),
    ]


async def test_the_front_door_shows_reflection_to_authenticated_callers(stack: Stack) -> None:
    address = f"127.0.0.1:{stack.ports['orders']}"
    listed = await asyncio.to_thread(grpcurl, *as_operator(stack), address, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        SERVICE_NAMES["orders"],
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = await asyncio.to_thread(
        grpcurl, *as_operator(stack), address, "describe", SERVICE_NAMES["orders"]
    )
    assert described.returncode == 0 and "rpc " in described.stdout
    health = await asyncio.to_thread(
        grpcurl, *as_operator(stack), address, "grpc.health.v1.Health/Check"
    )
    assert json.loads(health.stdout) == {"status": "SERVING"}
    anonymous = await asyncio.to_thread(grpcurl, address, "list")
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr


@pytest.mark.parametrize("name", ["payments", "inventory", "shipping"])
async def test_internal_services_serve_no_reflection(stack: Stack, name: str) -> None:
    address = f"127.0.0.1:{stack.ports[name]}"
    listed = await asyncio.to_thread(grpcurl, *as_operator(stack), address, "list")
    assert listed.returncode != 0
    assert "does not support the reflection API" in listed.stderr
    described = await asyncio.to_thread(
        grpcurl, *contract(name), address, "describe", SERVICE_NAMES[name]
    )
    assert described.returncode == 0 and "rpc " in described.stdout, described.stderr


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_health_checks_need_no_credentials(stack: Stack, name: str) -> None:
    # (grpcurl would need reflection, which does; probes call the health service directly.)
    stub = health_pb2_grpc.HealthStub(stack.channel(name, stack.as_role(None).credentials))
    response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_grpcurl_calls_and_rich_errors(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=7, price_minor=450)
    address = f"127.0.0.1:{stack.ports['inventory']}"
    flags = [*as_operator(stack), *contract("inventory")]
    found = await asyncio.to_thread(
        grpcurl,
        *flags,
        "-d",
        json.dumps({"sku": sku}),
        address,
        "inventory.v1.InventoryService/GetStock",
    )
    assert json.loads(found.stdout)["quantity"] == "7"
    missing = await asyncio.to_thread(
        grpcurl,
        *flags,
        "-d",
        '{"sku": "NOPE-1"}',
        address,
        "inventory.v1.InventoryService/GetStock",
    )
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr and '"reason":"SKU_NOT_FOUND"' in missing.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_service_stops_gracefully_on_signal(stack: Stack, sig: int, tmp_path: Path) -> None:
    port_env = {
        **stack.env(),
        **stack.security("shipping"),
        "SHIPPING_PORT": "0",
        "SHIPPING_METRICS_PORT": "0",
    }
    process = Process(
        "shipping-extra",
        [sys.executable, "-m", "server", "shipping"],
        port_env,
        tmp_path / "shipping.log",
    )
    process.start()
    for _ in range(200):
        if "listening" in process.log:
            break
        await asyncio.sleep(0.05)
    assert "listening" in process.log
    code = await asyncio.to_thread(process.stop, sig, 10.0)
    assert code == 0, process.log
    assert "stopped" in process.log


async def test_a_watcher_that_goes_away_leaves_no_error_behind(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=5)
    orders = [await place(stack, order_request(sku)) for _ in range(3)]
    log_before = len(stack.process("orders").log)
    for order in orders:
        # The caller reads the first change and hangs up mid-stream.
        call = stack.orders.WatchOrder(pb.WatchOrderRequest(order_id=order.order_id))
        async for _ in call:
            break
        call.cancel()
    await asyncio.sleep(0.5)
    for order in orders:
        await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    log = stack.process("orders").log[log_before:]
    assert "never retrieved" not in log, log[-2000:]
    assert "different Context" not in log, log[-2000:]


async def test_a_health_watch_streams_serving_until_the_caller_hangs_up(stack: Stack) -> None:
    log_before = len(stack.process("orders").log)
    stub = health_pb2_grpc.HealthStub(stack.channel("orders", stack.as_role(None).credentials))
    call = stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAMES["orders"]))
    first = await asyncio.wait_for(call.read(), timeout=10)
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    # Like the standard servicer, it stays open to tell the next change.
    await asyncio.sleep(0.5)
    assert not call.done()
    call.cancel()
    assert await call.code() == grpc.StatusCode.CANCELLED
    await asyncio.sleep(0.5)
    log = stack.process("orders").log[log_before:]
    assert '"level": "error"' not in log and "Traceback" not in log, log[-2000:]
