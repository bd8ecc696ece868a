"""Seals: what one vouches for, it vouches for alone; and the worker checks them."""

from __future__ import annotations

import json
import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from clients.proto.orders.v1 import orders_pb2
from server.core.codec import EncryptionCodec
from server.core.keyring import generate_keyring, parse_keyring
from server.core.payloads import encrypted_converter
from server.core.seal import HEADER, Sealed, Sealer, SealingInterceptor
from server.core.settings import Settings
from tests.support.polling import eventually
from tests.workflow_unit.fakes import FakeActivities
from tests.workflow_unit.harness import order_input
from worker.main import WORKFLOWS, build_worker
from worker.patches import EVERY_PATCH_MARKERS
from worker.workflows import OrderWorkflow


def sealer(*key_ids: str) -> Sealer:
    keys: dict[str, str] = {}
    for key_id in key_ids:
        keys.update(json.loads(generate_keyring(key_id))["keys"])
    return Sealer(parse_keyring(json.dumps({"current": key_ids[-1], "keys": keys}), source="t"))


CANCEL = Sealed("update", "cancel", "ord_a", "update-1")


def test_a_seal_vouches_for_its_message_alone() -> None:
    signer = sealer("k1")
    headers = {HEADER: signer.seal(CANCEL)}
    assert signer.verify(headers, CANCEL) is None
    for other in (
        Sealed("update", "cancel", "ord_b", "update-1"),  # another order
        Sealed("update", "cancel", "ord_a", "update-2"),  # another update
        Sealed("update", "confirm_delivery", "ord_a", "update-1"),  # another handler
        Sealed("signal", "cancel", "ord_a", "update-1"),  # another kind
    ):
        assert signer.verify(headers, other) == "a seal that does not match the message"


def test_a_seal_of_another_keyring_or_none_at_all_is_refused() -> None:
    assert sealer("k1").verify({HEADER: sealer("k1").seal(CANCEL)}, CANCEL) is not None
    assert sealer("k1").verify({}, CANCEL) == "no seal"
    garbage = sealer("k1").seal(CANCEL)
    garbage.data = b"not json"
    assert sealer("k1").verify({HEADER: garbage}, CANCEL) == "a malformed seal"


def test_seals_under_a_retired_key_stay_valid_while_it_is_in_the_ring() -> None:
    old, new = json.loads(generate_keyring("k1")), json.loads(generate_keyring("k2"))
    before = Sealer(parse_keyring(json.dumps(old), source="t"))
    rotated = {"current": "k2", "keys": {**old["keys"], **new["keys"]}}
    after = Sealer(parse_keyring(json.dumps(rotated), source="t"))
    assert after.verify({HEADER: before.seal(CANCEL)}, CANCEL) is None
    dropped = Sealer(parse_keyring(json.dumps(new), source="t"))
    assert dropped.verify({HEADER: before.seal(CANCEL)}, CANCEL) is not None


def test_every_workflow_update_has_a_validator() -> None:
    """Updates are checked in their validators (worker/guard.py): one without would be open."""
    for cls in WORKFLOWS:
        updates = workflow._Definition.must_from_class(cls).updates
        for name, definition in updates.items():
            assert definition.validator is not None, f"{cls.__name__}.{name} has no validator"


def test_workflows_say_which_id_their_input_belongs_under() -> None:
    for cls in WORKFLOWS:
        assert callable(getattr(cls, "workflow_id_for", None)), cls.__name__


@pytest.mark.parametrize("sandbox", [False, True], ids=["unsandboxed", "sandboxed"])
async def test_the_worker_runs_only_what_the_platform_sealed(
    temporal: WorkflowEnvironment, sandbox: bool
) -> None:
    """The production worker, as built by worker/main.py, in both of its runners."""
    settings = Settings(TEMPORAL_TASK_QUEUE=f"guard-{uuid.uuid4()}", WORKFLOW_SANDBOX=sandbox)
    keyring = settings.payload_keyring()
    config = temporal.client.config()
    config["data_converter"] = encrypted_converter(EncryptionCodec(keyring))
    unsealed = Client(**config)
    config["interceptors"] = [SealingInterceptor(Sealer(keyring))]
    platform = Client(**config)
    fakes = FakeActivities()

    async with build_worker(platform, settings, fakes):  # type: ignore[arg-type]
        order = order_input()
        sealed = await platform.start_workflow(
            OrderWorkflow.run, order, id=order.order_id, task_queue=settings.task_queue
        )
        await eventually(
            lambda: sealed.query(OrderWorkflow.order),
            lambda o: o.state == orders_pb2.ORDER_STATE_SHIPPED,
        )
        await sealed.execute_update(OrderWorkflow.confirm_delivery)
        assert (await sealed.result()).state == orders_pb2.ORDER_STATE_DELIVERED
        # A new run records the newest marker that stands for every patch,
        # the seal's included, and one search attribute update with it.
        history = await sealed.fetch_history()
        patches = [
            json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)
            for e in history.events
            if e.marker_recorded_event_attributes.marker_name == "core_patch"
        ]
        assert [p["id"] for p in patches] == [EVERY_PATCH_MARKERS[0]]
        upserts = [
            e
            for e in history.events
            if e.HasField("upsert_workflow_search_attributes_event_attributes")
        ]
        assert len(upserts) == 1

        forged = order_input()
        handle = await unsealed.start_workflow(
            OrderWorkflow.run, forged, id=forged.order_id, task_queue=settings.task_queue
        )
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.type == "UNAUTHENTICATED"
        assert not [call for call in fakes.calls if forged.order_id in repr(call[1])]
