"""The README's grpcurl recipes, run with the real grpcurl against the live stack.

The front door serves reflection, so grpcurl needs no proto files for it; the
inventory service is described by its contract in protos/, as in README.md.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from typing import Any

import pytest

from tests.support.binaries import venv_binary
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

# Guards against a hung process; the tests wait on events, not on time.
_GUARD_SECONDS = 120


class Grpcurl:
    """grpcurl as a caller with the stack's operator token would run it."""

    def __init__(self, stack: Stack) -> None:
        self.binary = venv_binary("grpcurl")
        self.stack = stack
        token = stack.credentials_folder.token("operator")
        self.auth = ["-H", f"authorization: Bearer {token}"]

    def command(self, service: str, *args: str, flags: tuple[str, ...] = ()) -> list[str]:
        """grpcurl [flags] <service's address> [args], e.g. args ("describe", "orders.v1.Order")."""
        return [self.binary, "-plaintext", *self.auth, *flags, self.target(service), *args]

    def target(self, service: str) -> str:
        return f"127.0.0.1:{self.stack.ports[service]}"

    def run(
        self, service: str, *args: str, flags: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(service, *args, flags=flags),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=_GUARD_SECONDS,
        )

    def call(self, service: str, method: str, request: dict[str, Any], *flags: str) -> Any:
        done = self.run(service, method, flags=(*flags, "-d", json.dumps(request)))
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


def json_stream(text: str) -> list[Any]:
    """The messages of a server stream, as grpcurl prints them: JSON objects one after another."""
    decoder, messages, at = json.JSONDecoder(), [], 0
    text = text.strip()
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        messages.append(message)
        while at < len(text) and text[at].isspace():
            at += 1
    return messages


def order_request(sku: str) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "customer_id": "cust-grpcurl",
        "line_items": [{"sku": sku, "quantity": 2}],
        "shipping_address": {
            "name": "Ada Lovelace",
            "line1": "12 Analytical Row",
            "city": "London",
            "postal_code": "N1 9GU",
            "country_code": "GB",
        },
        "payment_token": "tok_visa",
    }


@pytest.fixture
def grpcurl(stack: Stack) -> Grpcurl:
    return Grpcurl(stack)


def stock(grpcurl: Grpcurl) -> str:
    sku = f"MUG-{uuid.uuid4().hex[:8]}"
    grpcurl.call(
        "inventory",
        "inventory.v1.InventoryService/SetStock",
        {"sku": sku, "quantity": 10, "unit_price": {"currency_code": "USD", "amount_minor": 1250}},
        *("-import-path", "protos", "-proto", "inventory/v1/inventory.proto"),
    )
    return sku


def test_reflection_lists_and_describes_the_front_door(grpcurl: Grpcurl) -> None:
    listed = grpcurl.run("orders", "list")
    assert listed.returncode == 0, listed.stderr
    assert "orders.v1.OrderService" in listed.stdout.split()

    described = grpcurl.run("orders", "describe", "orders.v1.OrderService")
    assert described.returncode == 0, described.stderr
    for method in ("CreateOrder", "GetOrder", "WatchOrder", "ConfirmDelivery", "CancelOrder"):
        assert f"rpc {method} (" in described.stdout

    message = grpcurl.run("orders", "describe", "orders.v1.CreateOrderRequest")
    assert message.returncode == 0, message.stderr
    assert "string customer_id = 2;" in message.stdout


def test_reflection_needs_a_token(grpcurl: Grpcurl) -> None:
    grpcurl.auth = []
    listed = grpcurl.run("orders", "list")
    assert listed.returncode != 0
    assert "Unauthenticated" in listed.stderr


async def test_place_read_watch_and_deliver_an_order(grpcurl: Grpcurl) -> None:
    sku = stock(grpcurl)
    placed = grpcurl.call("orders", "orders.v1.OrderService/CreateOrder", order_request(sku))
    order_id = placed["order"]["order_id"]
    assert placed["order"]["state"] == "ORDER_STATE_PENDING"
    assert placed["order"]["total"] == {"currency_code": "USD", "amount_minor": "2500"}

    got = grpcurl.call("orders", "orders.v1.OrderService/GetOrder", {"order_id": order_id})
    assert got["order"]["order_id"] == order_id

    watch = await asyncio.create_subprocess_exec(
        *grpcurl.command(
            "orders",
            "orders.v1.OrderService/WatchOrder",
            flags=("-d", json.dumps({"order_id": order_id})),
        ),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert watch.stdout is not None
    printed = ""
    try:
        # The stream ends only at a terminal state: read it until SHIPPED, then report delivery.
        while '"ORDER_STATE_SHIPPED"' not in printed:
            chunk = await asyncio.wait_for(watch.stdout.read(4096), _GUARD_SECONDS)
            assert chunk, "WatchOrder ended before SHIPPED"
            printed += chunk.decode()
        delivered = grpcurl.call(
            "orders", "orders.v1.OrderService/ConfirmDelivery", {"order_id": order_id}
        )
        assert delivered["order"]["state"] == "ORDER_STATE_DELIVERED"
        rest, errors = await asyncio.wait_for(watch.communicate(), _GUARD_SECONDS)
    finally:
        if watch.returncode is None:
            watch.kill()
            await watch.wait()
    assert watch.returncode == 0, errors.decode()
    states = [message["order"]["state"] for message in json_stream(printed + rest.decode())]
    assert states[-2:] == ["ORDER_STATE_SHIPPED", "ORDER_STATE_DELIVERED"]
    assert {message["order"]["order_id"] for message in json_stream(printed)} == {order_id}


def test_a_bad_request_shows_its_error_details(grpcurl: Grpcurl) -> None:
    request = order_request(stock(grpcurl))
    del request["customer_id"]
    failed = grpcurl.run(
        "orders",
        "orders.v1.OrderService/CreateOrder",
        flags=("-format", "json", "-format-error", "-d", json.dumps(request)),
    )
    # grpcurl exits with 64 + the gRPC status code (3 is INVALID_ARGUMENT), and
    # with -format-error prints the google.rpc.Status, details decoded, on stderr.
    assert failed.returncode == 64 + 3, failed.stderr
    status = json.loads(failed.stderr)
    assert status["code"] == 3
    details = {detail["@type"].rpartition("/")[2]: detail for detail in status["details"]}
    assert details["google.rpc.ErrorInfo"]["reason"] == "INVALID_ARGUMENT"
    assert details["google.rpc.ErrorInfo"]["domain"] == "orders.example.com"
    assert [v["field"] for v in details["google.rpc.BadRequest"]["field_violations"]] == [
        "customer_id"
    ]
