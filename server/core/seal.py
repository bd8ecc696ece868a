"""Seals: proof that a workflow start, update or signal was sent by the platform.

Anyone who reaches Temporal can start a workflow on our task queue, or send
an update or a signal to one, without passing the front door's checks. The
payload codec refuses what was not encrypted under the platform's keyring
(server/core/codec.py), but that alone does not cover messages that carry no
payload at all (`confirm_delivery`, the delivery signals), nor the replay of
an encrypted payload copied from one order's history into another's.

So every start, update and signal the platform sends carries a seal in its
Temporal headers: an HMAC-SHA256, under a key derived from the payload
keyring's, of what the message is (`start`, `update` or `signal`), its name,
the workflow id it is for and, for an update, its update id. The worker
(worker/guard.py) verifies the seal before a workflow runs or a handler
sees the message, and refuses what carries none or the wrong one:

* a seal is bound to one workflow id: copied to another order, it is void;
* an update's seal is bound to its update id, which Temporal runs at most
  once per workflow run: a copied update is answered from the first one,
  never applied twice;
* a signal's seal binds its name and target, so a replayed signal can only
  repeat what the platform already said to that workflow.

Seals are deterministic (no nonce, no clock), so workflow code can make
them for the child workflows and signals it sends and replay the same
commands. The seal key is derived with HKDF, never the encryption key itself;
each seal names its key id, so a keyring rotation keeps old seals valid for
as long as their key stays in the ring.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

from server.core.keyring import Keyring

HEADER = "order-platform-seal"
ENCODING = b"json/plain"
_HKDF_INFO = b"order-platform workflow seal v1"

Kind = Literal["start", "update", "signal"]


@dataclass(frozen=True)
class Sealed:
    """What a seal vouches for."""

    kind: Kind
    name: str
    workflow_id: str
    update_id: str = ""

    def canonical(self) -> bytes:
        return "\x1f".join((self.kind, self.name, self.workflow_id, self.update_id)).encode()


class Sealer:
    """Makes and checks seals under a keyring's derived keys."""

    def __init__(self, keyring: Keyring) -> None:
        self._current_id = keyring.current_id
        self._keys = {key_id: _seal_key(key) for key_id, key in keyring.keys.items()}

    def seal(self, what: Sealed) -> Payload:
        mac = hmac.new(self._keys[self._current_id], what.canonical(), hashlib.sha256)
        document = {"key": self._current_id, "mac": mac.hexdigest()}
        return Payload(metadata={"encoding": ENCODING}, data=json.dumps(document).encode())

    def verify(self, headers: Mapping[str, Payload], what: Sealed) -> str | None:
        """None if the headers carry a good seal of `what`; otherwise why not."""
        payload = headers.get(HEADER)
        if payload is None:
            return "no seal"
        try:
            document = json.loads(payload.data)
            key_id, mac = document["key"], document["mac"]
            if not isinstance(key_id, str) or not isinstance(mac, str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return "a malformed seal"
        key = self._keys.get(key_id)
        if key is None:
            return "a seal under a key not in the keyring"
        expected = hmac.new(key, what.canonical(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, mac):
            return "a seal that does not match the message"
        return None

    def with_seal(self, headers: Mapping[str, Payload], what: Sealed) -> dict[str, Payload]:
        return {**headers, HEADER: self.seal(what)}


def _seal_key(key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key)


class SealingInterceptor(Interceptor):
    """A Temporal client interceptor that seals every start, update and signal it sends."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _SealingOutbound(next, self._sealer)


class _SealingOutbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, sealer: Sealer) -> None:
        super().__init__(next)
        self._sealer = sealer

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("start", input.workflow, input.id)
        )
        return await super().start_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        # The seal binds the update id, so it must be chosen here.
        input.update_id = input.update_id or str(uuid.uuid4())
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("update", input.update, input.id, input.update_id)
        )
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: StartWorkflowUpdateWithStartInput
    ) -> WorkflowUpdateHandle[Any]:
        start, update = input.start_workflow_input, input.update_workflow_input
        start.headers = self._sealer.with_seal(
            start.headers, Sealed("start", start.workflow, start.id)
        )
        update.update_id = update.update_id or str(uuid.uuid4())
        update.headers = self._sealer.with_seal(
            update.headers, Sealed("update", update.update, start.id, update.update_id)
        )
        return await super().start_update_with_start_workflow(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        input.headers = self._sealer.with_seal(
            input.headers, Sealed("signal", input.signal, input.id)
        )
        await super().signal_workflow(input)
