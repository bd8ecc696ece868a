"""`python -m bench.bare_worker ADDRESS TASK_QUEUE`: the worker of the bare workflows.

A process of its own, like the platform's worker, with the SDK's defaults:
the default sandbox with the passthrough the platform uses for protobuf and
gRPC, default pollers, slots and sticky cache.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.bare_workflows import BareAcceptWorkflow, BareOrderWorkflow, bare_step


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[BareOrderWorkflow, BareAcceptWorkflow],
        activities=[bare_step],
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(
                "google.protobuf", "grpc"
            )
        ),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        print(f"bare worker polling {task_queue} on {address}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_worker")
    parser.add_argument("address", help="Temporal frontend, host:port")
    parser.add_argument("task_queue")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
