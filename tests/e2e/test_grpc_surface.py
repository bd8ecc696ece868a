"""What grpcurl users see: reflection, health, rich errors, graceful stop."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.binaries import venv_binary
from tests.support.orders import stock_sku
from tests.support.stack import Process, Stack

pytestmark = pytest.mark.e2e

SERVICE_NAMES = {
    "orders": "orders.v1.OrderService",
    "payments": "payments.v1.PaymentService",
    "inventory": "inventory.v1.InventoryService",
    "shipping": "shipping.v1.ShippingService",
}


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    binary = venv_binary("grpcurl")
    return subprocess.run([binary, "-plaintext", *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_list_shows_service_health_and_reflection(stack: Stack, name: str) -> None:
    address = f"127.0.0.1:{stack.ports[name]}"
    listed = await asyncio.to_thread(grpcurl, address, "list")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) >= {
        SERVICE_NAMES[name],
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = await asyncio.to_thread(grpcurl, address, "describe", SERVICE_NAMES[name])
    assert described.returncode == 0 and "rpc " in described.stdout
    health = await asyncio.to_thread(grpcurl, address, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}


async def test_grpcurl_calls_and_rich_errors(stack: Stack) -> None:
    sku = await stock_sku(stack, quantity=7, price_minor=450)
    address = f"127.0.0.1:{stack.ports['inventory']}"
    found = await asyncio.to_thread(
        grpcurl, "-d", json.dumps({"sku": sku}), address, "inventory.v1.InventoryService/GetStock"
    )
    assert json.loads(found.stdout)["quantity"] == "7"
    missing = await asyncio.to_thread(
        grpcurl, "-d", '{"sku": "NOPE-1"}', address, "inventory.v1.InventoryService/GetStock"
    )
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr and '"reason":"SKU_NOT_FOUND"' in missing.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_service_stops_gracefully_on_signal(stack: Stack, sig: int, tmp_path: Path) -> None:
    port_env = {**stack.env(), "SHIPPING_PORT": "0", "SHIPPING_METRICS_PORT": "0"}
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
