"""The `orders` command line against the stack: --json output and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from clients.cli.app import app
from clients.cli.exits import ExitCode
from clients.cli.watch import WatchView
from clients.proto.orders.v1 import orders_pb2
from tests.support.stack import ROOT, Stack, free_port

pytestmark = pytest.mark.e2e

ADDRESS_FLAGS = [
    "--name", "Ada Lovelace", "--line1", "12 Analytical Row", "--city", "London",
    "--postal-code", "N1 9GU", "--country", "GB",
]  # fmt: skip


def connection_flags(stack: Stack) -> list[str]:
    return [
        "--target", f"127.0.0.1:{stack.ports['orders']}",
        "--inventory-target", f"127.0.0.1:{stack.ports['inventory']}",
        "--payments-target", f"127.0.0.1:{stack.ports['payments']}",
        "--token-file", str(stack.credentials_folder.token_file("operator")),
    ]  # fmt: skip


def orders_cli(stack: Stack, *args: str, input: str | None = None) -> tuple[int, str, str]:
    """Runs `orders ARGS` in-process; returns the exit code, stdout and stderr."""
    result = CliRunner().invoke(
        app, [*connection_flags(stack), *args], input=input, env={"COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def stocked_sku(stack: Stack) -> str:
    sku = f"SKU-{uuid.uuid4().hex[:10]}"
    code, out, _ = orders_cli(
        stack, "stock", "set", sku, "--quantity", "10", "--price", "12.50", "--json"
    )
    assert code == 0
    assert json.loads(out)["unit_price"] == {"currency_code": "USD", "amount_minor": "1250"}
    return sku


def create(stack: Stack, sku: str, *extra: str) -> dict[str, object]:
    code, out, err = orders_cli(
        stack, "create", "--customer", "cust-cli", "--item", f"{sku}=2",
        "--payment-token", "tok_visa", *ADDRESS_FLAGS, "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    order: dict[str, object] = json.loads(out)
    return order


def test_an_order_through_the_command_line(stack: Stack) -> None:
    sku = stocked_sku(stack)
    order = create(stack, sku)
    order_id = str(order["order_id"])
    assert order["state"] == "ORDER_STATE_PENDING"

    code, out, _ = orders_cli(stack, "watch", order_id, "--until", "shipped", "--json")
    assert code == ExitCode.OK
    states = [json.loads(line)["state"] for line in out.splitlines()]
    assert states[0] in ("ORDER_STATE_PENDING", "ORDER_STATE_RESERVED", "ORDER_STATE_PAID")
    assert states[-1] == "ORDER_STATE_SHIPPED"

    code, out, _ = orders_cli(stack, "get", order_id, "--full", "--json")
    assert code == 0 and json.loads(out)["order"]["order_id"] == order_id

    code, out, _ = orders_cli(stack, "confirm-delivery", order_id, "--json")
    assert code == 0 and json.loads(out)["state"] == "ORDER_STATE_DELIVERED"

    code, out, _ = orders_cli(stack, "payments", "list", order_id, "--json")
    assert code == 0
    assert [p["state"] for p in json.loads(out)["payments"]] == ["PAYMENT_STATE_CAPTURED"]

    code, out, _ = orders_cli(stack, "stock", "show", sku, "--json")
    assert code == 0 and json.loads(out)["items"][0]["quantity"] == "8"

    # A person's view: the order in a panel, the stock in a table.
    code, out, _ = orders_cli(stack, "get", order_id)
    assert code == 0 and order_id in out and "DELIVERED" in out and "25.00 USD" in out

    # Refused by the platform's rules: exit 4, and the reason for scripts.
    code, _, err = orders_cli(stack, "cancel", order_id, "--json")
    assert code == ExitCode.REFUSED
    assert json.loads(err)["error"]["reason"] == "ALREADY_SHIPPED"


def test_list_pages_and_the_table(stack: Stack) -> None:
    sku = stocked_sku(stack)
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    for _ in range(3):
        code, _, err = orders_cli(
            stack, "create", "--customer", customer, "--item", f"{sku}=1",
            "--payment-token", "tok_visa", *ADDRESS_FLAGS,
        )  # fmt: skip
        assert code == 0, err
    code, out, _ = orders_cli(stack, "list", "--customer", customer, "--page-size", "2", "--json")
    first = json.loads(out)
    assert code == 0 and len(first["orders"]) == 2 and first["next_page_token"]
    code, out, _ = orders_cli(
        stack, "list", "--customer", customer, "--page-size", "2",
        "--page-token", first["next_page_token"], "--json",
    )  # fmt: skip
    second = json.loads(out)
    assert len(second["orders"]) == 1 and second["next_page_token"] == ""
    code, out, _ = orders_cli(stack, "list", "--customer", customer, "--page-size", "1", "--all")
    assert code == 0
    assert sum(o["order_id"] in out for o in first["orders"] + second["orders"]) == 3


def test_create_from_a_json_file_then_cancel_and_watch_to_the_end(
    stack: Stack, tmp_path: Path
) -> None:
    sku = stocked_sku(stack)
    request = {
        "customer_id": "cust-file",
        "line_items": [{"sku": sku, "quantity": 1}],
        "shipping_address": {
            "name": "Ada", "line1": "1 Row", "city": "London", "postal_code": "N1",
            "country_code": "GB",
        },
        "payment_token": "tok_slow",
    }  # fmt: skip
    path = tmp_path / "order.json"
    path.write_text(json.dumps(request))
    code, out, err = orders_cli(stack, "create", "--from-file", str(path), "--json")
    assert code == 0, err
    order = json.loads(out)
    assert order["request_id"] and order["customer_id"] == "cust-file"

    code, out, _ = orders_cli(
        stack, "update-address", order["order_id"], "--name", "Charles", "--line1", "2 Row",
        "--city", "Paris", "--postal-code", "75001", "--country", "FR", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["shipping_address"]["city"] == "Paris"

    code, _, _ = orders_cli(stack, "cancel", order["order_id"], "--reason", "test")
    assert code == 0
    code, out, _ = orders_cli(stack, "watch", order["order_id"])
    assert code == ExitCode.ORDER_ENDED_UNFULFILLED
    assert out.splitlines()[-1].split()[-1] == "CANCELLED"


def test_failures_have_their_exit_codes(stack: Stack) -> None:
    code, _, err = orders_cli(stack, "get", "ord_" + "0" * 32, "--json")
    assert code == ExitCode.NOT_FOUND
    assert json.loads(err)["error"]["reason"] == "ORDER_NOT_FOUND"

    code, _, err = orders_cli(stack, "get", "ord_" + "0" * 32)
    assert code == ExitCode.NOT_FOUND and "what to do:" in err

    code, _, err = orders_cli(
        stack, "create", "--customer", "c", "--item", "NOPE=1", "--payment-token", "tok_visa",
        "--json",
    )  # fmt: skip
    assert code == ExitCode.USAGE
    error = json.loads(err)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["field_violations"] and error["trace_id"]

    code, _, _ = orders_cli(stack, "create", "--item", "no-quantity")
    assert code == ExitCode.USAGE

    result = CliRunner().invoke(
        app, ["--target", f"127.0.0.1:{stack.ports['orders']}", "--token", "not-a-jwt", "list"]
    )
    assert result.exit_code == ExitCode.DENIED

    nowhere = f"127.0.0.1:{free_port()}"
    result = CliRunner().invoke(
        app, ["--target", nowhere, "--token", "x", "--timeout", "1", "create", "--customer", "c",
              "--item", "A=1", "--payment-token", "tok_visa", *ADDRESS_FLAGS],
    )  # fmt: skip
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "--request-id" in result.stderr  # how to repeat it safely


def test_a_declined_card_ends_the_watch_with_exit_7(stack: Stack) -> None:
    sku = stocked_sku(stack)
    code, out, _ = orders_cli(
        stack, "create", "--customer", "c", "--item", f"{sku}=1",
        "--payment-token", "tok_chargeDeclined", *ADDRESS_FLAGS, "--watch", "--json",
    )  # fmt: skip
    assert code == ExitCode.ORDER_ENDED_UNFULFILLED
    last = json.loads(out.splitlines()[-1])
    assert last["state"] == "ORDER_STATE_FAILED"
    assert last["failure"]["reason"] == "PAYMENT_DECLINED"


def test_the_live_view_shows_the_steps_done_and_the_detour() -> None:
    view = WatchView("ord_1")
    for state in (orders_pb2.ORDER_STATE_PENDING, orders_pb2.ORDER_STATE_RESERVED):
        view.saw(orders_pb2.Order(order_id="ord_1", state=state))
    console = Console(record=True, width=100)
    console.print(view.render())
    text = console.export_text()
    assert re.search(r"✔\s+placed", text) and re.search(r"·\s+delivered", text)
    assert not re.search(r"✔\s+stock reserved", text)  # the step under way is not ticked

    failed = orders_pb2.Order(order_id="ord_1", state=orders_pb2.ORDER_STATE_FAILED)
    failed.failure.reason = "PAYMENT_DECLINED"
    view.saw(failed)
    console.print(view.render())
    text = console.export_text()
    assert "failed" in text and "PAYMENT_DECLINED" in text


def test_the_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clients.cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "watch" in result.stdout
