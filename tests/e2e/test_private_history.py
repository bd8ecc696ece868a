"""No customer data in Temporal: an order's raw history holds neither its card nor its address.

What Temporal stores is read here as Temporal stores it (no data converter
between), for the order workflow, after an
order that went through every kind of payload: the workflow input, activity
arguments and results, an update with a new address, queries, heartbeats.
Then the codec server, with the operator token, reads the same payloads back.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.request
import uuid

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from clients.proto.common.v1 import address_pb2
from clients.proto.orders.v1 import orders_pb2 as pb
from tests.support.orders import address, order_request, place, stock_sku, wait_for
from tests.support.stack import ROOT, Stack, free_port
from tests.support.temporal import decoding_client
from worker.workflows import OrderWorkflow

# A slow card: the address can still change while it is being charged.
TOKEN = b"tok_slow"


async def raw_history(client: Client, workflow_id: str) -> History:
    """The workflow's history as the server keeps it, payloads untouched."""
    fetched = await client.get_workflow_handle(workflow_id).fetch_history()
    return History(events=fetched.events)


def child_ids(history: History) -> list[str]:
    return [
        event.start_child_workflow_execution_initiated_event_attributes.workflow_id
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]


def private_address(label: str) -> address_pb2.PostalAddress:
    """An address whose every line is unique to this test, so that any copy is found."""
    unique = uuid.uuid4().hex[:12]
    message = address()
    message.name = f"Customer {label} {unique}"
    message.line1 = f"{unique} {label} Street"
    message.city = f"City{unique}"
    return message


async def test_the_raw_history_holds_neither_the_token_nor_the_address(
    stack: Stack, temporal: WorkflowEnvironment
) -> None:
    first, second = private_address("First"), private_address("Second")
    request = order_request(await stock_sku(stack, quantity=1), token=TOKEN.decode())
    request.shipping_address.CopyFrom(first)
    order = await place(stack, request)
    await stack.orders.UpdateShippingAddress(
        pb.UpdateShippingAddressRequest(order_id=order.order_id, shipping_address=second)
    )
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_SHIPPED,))
    # A query's answer holds the address too (queries are not in the history,
    # but they pass through the codec like everything else).
    handle = decoding_client(temporal.client).get_workflow_handle(order.order_id)
    assert (await handle.query(OrderWorkflow.order)).shipping_address == second
    await stack.orders.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id))
    await wait_for(stack, order.order_id, (pb.ORDER_STATE_DELIVERED,))

    # A delivery reported within the first tracking period starts no
    # tracking child; any child there is is read too.
    histories = {order.order_id: await raw_history(temporal.client, order.order_id)}
    for child_id in child_ids(histories[order.order_id]):
        histories[child_id] = await raw_history(temporal.client, child_id)

    secrets = [TOKEN] + [
        value.encode()
        for message in (first, second)
        for value in (message.name, message.line1, message.city)
    ]
    for workflow_id, history in histories.items():
        raw = history.SerializeToString()
        readable = json_format.MessageToJson(history).encode()  # what the UI and CLI show
        for secret in secrets:
            assert secret not in raw, f"{secret!r} in the history of {workflow_id}"
            assert secret not in readable, f"{secret!r} in the history of {workflow_id}"
        assert b"binary/encrypted" in raw

    # The same history through the codec server, as an operator reads it.
    started = histories[order.order_id].events[0]
    inputs = started.workflow_execution_started_event_attributes.input
    decoded = await asyncio.to_thread(decode_with_codec_server, stack, inputs)
    assert first.name.encode() in decoded.SerializeToString()
    assert TOKEN not in decoded.SerializeToString()  # the workflow never had it


def decode_with_codec_server(stack: Stack, payloads: Payloads) -> Payloads:
    """Runs `python -m server codec` as make run does, and asks it to decode."""
    port = free_port()
    credentials = stack.credentials_folder
    token = credentials.token("operator")
    env = {
        **stack.env(),
        "CODEC_SERVER_PORT": str(port),
        "JWT_SECRET_FILE": str(credentials.secret_file),
    }
    log = stack.workdir / "codec.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "server", "codec"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        body = json_format.MessageToJson(payloads).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/decode",
            data=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        for _ in range(200):
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return json_format.Parse(response.read(), Payloads())
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.05)
        raise AssertionError(f"the codec server did not answer:\n{log.read_text()}")
    finally:
        process.terminate()
        process.wait(10)
