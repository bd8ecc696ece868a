"""`python -m bench.bare_worker ADDRESS TASK_QUEUE [--floor]`: the worker of a bare baseline.

A process of its own, like the platform's worker, with the SDK's defaults
(default pollers, slots and sticky cache) and one of two setups:

* the bare workflows (regular activities, and the update-with-start): the
  default sandbox, with the passthrough the platform uses for protobuf and gRPC;
* `--floor`, the engine's floor (local activities): workflow code outside the
  sandbox, as the platform's worker runs it (worker/main.py).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from bench.bare_workflows import (
    BareAcceptWorkflow,
    BareOrderWorkflow,
    FloorOrderWorkflow,
    bare_step,
)


def workflows_and_runner(floor: bool) -> tuple[list[type], WorkflowRunner]:
    """The workflows a baseline's worker runs, and how it runs their code."""
    if floor:
        return [FloorOrderWorkflow], UnsandboxedWorkflowRunner()
    sandbox = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("google.protobuf", "grpc")
    )
    return [BareOrderWorkflow, BareAcceptWorkflow], sandbox


async def serve(address: str, task_queue: str, *, floor: bool = False) -> None:
    client = await Client.connect(address)
    workflows, runner = workflows_and_runner(floor)
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=[bare_step],
        workflow_runner=runner,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        kind = "floor" if floor else "bare"
        print(f"{kind} worker polling {task_queue} on {address}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_worker")
    parser.add_argument("address", help="Temporal frontend, host:port")
    parser.add_argument("task_queue")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="run the engine's floor (local activities, no sandbox) instead of the bare workflows",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue, floor=args.floor))


if __name__ == "__main__":
    main()
