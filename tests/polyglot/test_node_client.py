"""The Node.js client (clients/node) against the live stack, with node's own test runner.

clients/node/live.test.js places an order, watches it to SHIPPED, confirms its
delivery, and decodes the google.rpc.Status of failed calls; this runs it and
checks what it reports. `make venv` installs its packages (npm ci) when npm is
on the machine; without node or those packages the test skips.
"""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tests.support.orders import stock_sku
from tests.support.stack import ROOT, Stack

pytestmark = pytest.mark.e2e

CLIENT = ROOT / "clients" / "node"


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: the Node.js client is not tested")
    if not (CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.skip("clients/node has no node_modules: run make venv (npm ci) first")
    return found


async def test_node_client_places_watches_delivers_and_decodes_errors(stack: Stack) -> None:
    binary = node()
    sku = await stock_sku(stack, quantity=5)
    ran = await asyncio.create_subprocess_exec(
        *(binary, "--test", "--test-reporter=tap", "live.test.js"),
        cwd=CLIENT,
        env={
            **os.environ,
            "ORDERS_ADDRESS": f"127.0.0.1:{stack.ports['orders']}",
            "ORDERS_TOKEN": stack.credentials_folder.token("operator"),
            "ORDERS_SKU": sku,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # A guard against a hung process, not a measurement.
        output, _ = await asyncio.wait_for(ran.communicate(), 180)
    finally:
        if ran.returncode is None:
            ran.kill()
            await ran.wait()
    report = output.decode()
    assert ran.returncode == 0, report
    assert "# pass 3" in report and "# fail 0" in report, report
    assert "ORDER_STATE_SHIPPED ORDER_STATE_DELIVERED" in report, report
    assert "rejected with reason INVALID_ARGUMENT" in report, report
