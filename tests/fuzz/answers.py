"""Calling an RPC with raw bytes, and what a well-formed answer is."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from clients.errors import DOMAIN, Reason
from tests.fuzz.strategies import Rpc

# Generous: a call that takes this long is a server that hangs, not a slow one.
CALL_SECONDS = 30.0
# Codes that say the server broke, or did not know what to answer.
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


@dataclass(frozen=True)
class Answer:
    code: grpc.StatusCode
    message: str
    status: status_pb2.Status | None

    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        for detail in self.status.details if self.status else []:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return info
        return None

    def violations(self) -> list[str]:
        """The fields a BadRequest detail names."""
        for detail in self.status.details if self.status else []:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                return [v.field for v in bad.field_violations]
        return []

    def retry_delay(self) -> float | None:
        for detail in self.status.details if self.status else []:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return info.retry_delay.ToNanoseconds() / 1e9
        return None


async def call_raw(channel: grpc.aio.Channel, rpc: Rpc, raw: bytes) -> Answer:
    """Sends `raw` as the request; for a stream, the answer up to its first message."""
    try:
        if rpc.streams:
            call = channel.unary_stream(rpc.path)(raw, timeout=CALL_SECONDS)
            try:
                async for _ in call:
                    break
            finally:
                call.cancel()
        else:
            await channel.unary_unary(rpc.path)(raw, timeout=CALL_SECONDS)
    except grpc.aio.AioRpcError as error:
        return Answer(error.code(), error.details() or "", rpc_status.from_call(error))
    return Answer(grpc.StatusCode.OK, "", None)


def problems(answer: Answer) -> list[str]:
    """What is wrong with an answer: empty when it is one the contract allows."""
    if answer.code == grpc.StatusCode.OK:
        return []
    found = []
    if answer.code in NEVER:
        found.append(f"answered {answer.code.name}: {answer.message}")
    info = answer.error_info()
    if info is None or info.domain != DOMAIN:
        found.append(f"{answer.code.name} without the project's ErrorInfo: {answer.message}")
    elif info.reason not in Reason.__members__:
        found.append(f"unknown reason {info.reason}")
    elif Reason(info.reason).code != answer.code:
        found.append(f"reason {info.reason} travels with {answer.code.name}")
    return found


async def serving(channel: grpc.aio.Channel) -> bool:
    """Whether the server behind `channel` still answers its health check."""
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=CALL_SECONDS
    )
    return response.status == health_pb2.HealthCheckResponse.SERVING
