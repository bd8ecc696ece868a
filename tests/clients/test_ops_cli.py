"""`orders ops ...` against the stack: the operators' commands, --json output and exit codes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from clients.cli.exits import ExitCode
from server.core.auth import Role
from tests.clients.test_cli import create, orders_cli, stocked_sku
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def shipped_order(stack: Stack) -> str:
    order_id = str(create(stack, stocked_sku(stack))["order_id"])
    code, _, err = orders_cli(stack, "watch", order_id, "--until", "shipped", "--json")
    assert code == ExitCode.OK, err
    return order_id


def test_search_show_and_resolve(stack: Stack) -> None:
    order_id = shipped_order(stack)

    code, out, err = orders_cli(
        stack, "ops", "search", "--customer", "cust-cli", "--state", "shipped",
        "--min-age", "0s", "--page-size", "500", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert order_id in [o["order_id"] for o in json.loads(out)["orders"]]
    code, out, _ = orders_cli(stack, "ops", "search", "--customer", "cust-cli", "--min-age", "1d")
    assert code == 0 and order_id not in out

    code, out, err = orders_cli(stack, "ops", "show", order_id, "--json")
    assert code == 0, err
    detail = json.loads(out)
    assert detail["workflow_status"] == "WORKFLOW_STATUS_RUNNING"
    assert detail["shipment"]["state"] == "SHIPMENT_STATE_BOOKED"
    assert [p["state"] for p in detail["payments"]] == ["PAYMENT_STATE_CAPTURED"]

    request_id = str(uuid.uuid4())
    resolve = ["ops", "resolve", order_id, "--note", "looked: fine", "--request-id", request_id]
    code, out, err = orders_cli(stack, *resolve, "--json")
    assert code == 0, err
    action = json.loads(out)["action"]
    assert action["kind"] == "OPERATOR_ACTION_KIND_MARK_RESOLVED"
    assert action["operator"] == "dev-operator" and action["note"] == "looked: fine"
    code, out, _ = orders_cli(stack, *resolve, "--json")
    assert code == 0 and json.loads(out)["action"] == action

    # A person's view: the order with its workflow, holdings and the action taken.
    code, out, _ = orders_cli(stack, "ops", "show", order_id)
    assert code == 0
    for words in (order_id, "RUNNING", "BOOKED", "mark-resolved", "looked: fine"):
        assert words in out


def test_retry_and_cancel_and_their_refusals(stack: Stack) -> None:
    order_id = shipped_order(stack)
    code, out, err = orders_cli(stack, "ops", "retry", order_id, "--note", "nudge", "--json")
    assert code == 0, err
    assert json.loads(out)["action"]["kind"] == "OPERATOR_ACTION_KIND_RETRY_STEP"

    code, _, err = orders_cli(stack, "ops", "cancel", order_id, "--note", "too late", "--json")
    assert code == ExitCode.REFUSED
    assert json.loads(err)["error"]["reason"] == "ALREADY_SHIPPED"

    request_id = str(uuid.uuid4())
    code, _, _ = orders_cli(
        stack, "ops", "resolve", order_id, "--note", "first", "--request-id", request_id
    )
    assert code == 0
    code, _, err = orders_cli(
        stack, "ops", "resolve", order_id, "--note", "second", "--request-id", request_id
    )
    assert code == ExitCode.REFUSED
    assert "REQUEST_ID_REUSED" in err and "--request-id" in err

    code, _, err = orders_cli(stack, "ops", "show", "ord_" + uuid.uuid4().hex, "--json")
    assert code == ExitCode.NOT_FOUND
    code, _, _ = orders_cli(stack, "ops", "search", "--min-age", "soon")
    assert code == ExitCode.USAGE


def test_the_attention_table_once_and_live(stack: Stack) -> None:
    code, out, err = orders_cli(stack, "ops", "attention", "--json")
    assert code == 0, err
    assert all(o["attention_required"] for o in json.loads(out)["orders"])

    code, out, err = orders_cli(
        stack, "ops", "attention", "--watch", "--every", "0.1", "--rounds", "2"
    )
    assert code == 0, err
    assert out.count("orders needing attention") == 2


def test_a_customer_services_token_is_refused(stack: Stack, tmp_path: Path) -> None:
    token_file = tmp_path / "shop.token"
    token_file.write_text(
        stack.credentials_folder.mint(Role.CUSTOMER_SERVICE, subject="shop", customer_id="cust-cli")
    )
    # The last --token-file given is the one used.
    code, _, err = orders_cli(stack, "--token-file", str(token_file), "ops", "search", "--json")
    assert code == ExitCode.DENIED
    assert json.loads(err)["error"]["reason"] == "PERMISSION_DENIED"
