"""Child processes of the benchmark: started with a log file, waited for, stopped."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The checkout the benchmark itself runs from (its bare worker and server run from it too).
BENCH_ROOT = Path(__file__).resolve().parents[1]


def bench_env() -> dict[str, str]:
    """The environment of the benchmark's own children: its checkout's modules first."""
    return {**os.environ, "PYTHONPATH": str(BENCH_ROOT), "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def venv_program(name: str) -> str:
    """A program installed beside this Python (the venv's), else from PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} is missing: install the bench extras (make venv)")
    return found


@dataclass
class Child:
    """One process, its output appended to `log_path`."""

    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def check_running(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.tail()}")

    def rss_mib(self) -> float:
        return round(psutil.Process(self.pid).memory_info().rss / 2**20, 1)

    def stop(self, timeout: float = 15.0) -> None:
        stop_together([self], timeout)

    def tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def stop_together(children: list[Child], timeout: float = 15.0) -> None:
    """Asks each child to stop (SIGTERM), then waits for each: their graceful
    shutdowns overlap. A child still running `timeout` seconds on is killed."""
    running = [c.popen for c in children if c.popen is not None and c.popen.poll() is None]
    for popen in running:
        popen.send_signal(signal.SIGTERM)
    for popen in running:
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


async def wait_serving(target: str, child: Child, within: float = 90.0) -> None:
    """Waits until the gRPC server at `target` (run by `child`) reports SERVING."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            child.check_running()
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if loop.time() > deadline:
                raise TimeoutError(f"{child.name} is not serving at {target}:\n{child.tail()}")
            await asyncio.sleep(0.1)
