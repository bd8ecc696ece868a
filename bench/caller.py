"""CreateOrder calls sent open loop from a process that does nothing else.

The overload scenario follows every order it places to SHIPPED over a
WatchOrder stream, hundreds at a time. Sent and timed from that process, a
call's answer would wait for the loop behind those streams' messages: a
refusal answered in 3 ms was timed at 100 and more. So the calls are sent
and timed here, by `python -m bench.caller` with its own event loop and its
own channel, and each answer goes back to the scenario as one JSON line the
moment it comes, for the scenario to follow the order it placed.

The scenario writes the job to the child's stdin as one JSON document: the
front door's address, each customer's call metadata, and one or more
streams of calls, each sent at its own rate, all at once. Times are
`time.perf_counter()` values: a system-wide monotonic clock on Linux and
macOS, so both processes read the same clock.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.customers import Answer, Customers, Metadata
from bench.driver import Arrivals, open_loop
from clients.proto.orders.v1 import orders_pb2 as pb


@dataclass(frozen=True)
class Stream:
    """CreateOrder calls sent evenly at `per_second`, each once."""

    per_second: float
    requests: list[pb.CreateOrderRequest]


@dataclass(frozen=True)
class Sent:
    """How each stream kept time, and the CPU seconds the caller process spent sending."""

    streams: list[Arrivals]
    cpu_seconds: float


@dataclass(frozen=True)
class Answered:
    """One call of a stream: when it was sent, and its answer."""

    stream: int
    index: int
    sent_at: float
    answer: Answer


OnAnswer = Callable[[Answered], None]


async def send(
    target: str, metadata: dict[str, Metadata], streams: list[Stream], on_answer: OnAnswer
) -> Sent:
    """Sends the streams from a child process; `on_answer` gets each answer as it comes.

    Returns how each stream kept time once every call has been answered, and
    what the caller process spent.
    """
    job = {
        "target": target,
        "metadata": metadata,
        "streams": [
            {
                "per_second": stream.per_second,
                "requests": [
                    base64.b64encode(r.SerializeToString()).decode() for r in stream.requests
                ],
            }
            for stream in streams
        ],
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.caller",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        # Answers and a job of a thousand calls are long lines.
        limit=1 << 24,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(job).encode())
    await child.stdin.drain()
    child.stdin.close()
    kept: dict[int, Arrivals] = {}
    cpu_seconds = 0.0
    async for line in child.stdout:
        message = json.loads(line)
        if "cpu_seconds" in message:
            cpu_seconds = message["cpu_seconds"]
        elif "arrivals" in message:
            kept[message["stream"]] = Arrivals(**message["arrivals"])
        else:
            on_answer(
                Answered(
                    stream=message["stream"],
                    index=message["index"],
                    sent_at=message["sent_at"],
                    answer=Answer(**message["answer"]),
                )
            )
    if await child.wait() != 0 or len(kept) != len(streams):
        raise RuntimeError(f"the caller process failed (exit status {child.returncode})")
    return Sent([kept[index] for index in range(len(streams))], cpu_seconds)


async def _serve(job: dict[str, Any]) -> None:
    """The child's side: sends the job's streams and writes each answer as a line."""
    metadata = {customer: tuple(map(tuple, pairs)) for customer, pairs in job["metadata"].items()}
    customers = Customers(job["target"], metadata)  # type: ignore[arg-type]

    def write(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def run(number: int, stream: dict[str, Any]) -> None:
        requests = [
            pb.CreateOrderRequest.FromString(base64.b64decode(raw)) for raw in stream["requests"]
        ]

        async def call(index: int) -> None:
            sent_at = time.perf_counter()
            answer = await customers.create(requests[index])
            write(
                {
                    "stream": number,
                    "index": index,
                    "sent_at": sent_at,
                    "answer": dataclasses.asdict(answer),
                }
            )

        arrivals = await open_loop(len(requests), stream["per_second"], call)
        write({"stream": number, "arrivals": dataclasses.asdict(arrivals)})

    started = time.process_time()
    try:
        await asyncio.gather(*(run(n, s) for n, s in enumerate(job["streams"])))
        # What sending cost this process: its cores are the platform's too.
        write({"cpu_seconds": time.process_time() - started})
    finally:
        await customers.close()


if __name__ == "__main__":
    asyncio.run(_serve(json.loads(sys.stdin.read())))
