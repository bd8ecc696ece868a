"""`orders watch`: an order's way through its steps, live, until it ends.

On a terminal the steps are drawn as a checklist that updates in place, with
what the workflow is doing now (the step, its attempts, the last failure),
read once a second. Elsewhere each change of state is one line, or with
`--json` one JSON document per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from clients.cli.exits import ExitCode
from clients.cli.render import as_dict, order_panel, progress_table, when
from clients.errors import CallError
from clients.orders import OrdersClient, state_name
from clients.proto.orders.v1 import orders_pb2

# The way an order goes when all is well, and what each state means to a person.
HAPPY_PATH = (
    (orders_pb2.ORDER_STATE_PENDING, "placed"),
    (orders_pb2.ORDER_STATE_RESERVED, "stock reserved"),
    (orders_pb2.ORDER_STATE_PAID, "card charged"),
    (orders_pb2.ORDER_STATE_SHIPPING, "shipment being booked"),
    (orders_pb2.ORDER_STATE_SHIPPED, "shipped, waiting for delivery"),
    (orders_pb2.ORDER_STATE_DELIVERED, "delivered"),
)
# Where an order goes when it is cancelled or a step fails.
DETOURS = {
    orders_pb2.ORDER_STATE_CANCELLING: "cancelling: undoing the steps done",
    orders_pb2.ORDER_STATE_CANCELLED: "cancelled",
    orders_pb2.ORDER_STATE_COMPENSATING: "a step failed: undoing the steps done",
    orders_pb2.ORDER_STATE_FAILED: "failed",
    orders_pb2.ORDER_STATE_DELIVERY_OVERDUE: "delivery overdue: chase the carrier",
}
UNFULFILLED = frozenset({orders_pb2.ORDER_STATE_CANCELLED, orders_pb2.ORDER_STATE_FAILED})
_ORDER_OF: dict[int, int] = {state: index for index, (state, _) in enumerate(HAPPY_PATH)}


@dataclass
class WatchView:
    """What has been seen of an order so far: the states reached, and when."""

    order_id: str
    order: orders_pb2.Order | None = None
    reached: dict[int, str] = field(default_factory=dict)
    progress: orders_pb2.OrderProgress | None = None

    def saw(self, order: orders_pb2.Order) -> None:
        self.order = order
        self.reached.setdefault(order.state, when(order.update_time))

    def furthest_step(self) -> int:
        """Index in HAPPY_PATH of the furthest state reached (-1 for none)."""
        return max((_ORDER_OF[s] for s in self.reached if s in _ORDER_OF), default=-1)

    def render(self) -> RenderableType:
        """The checklist: done steps ticked, the current one spinning, detours in colour."""
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column()
        table.add_column(style="dim")
        current = self.order.state if self.order else None
        ended = current in UNFULFILLED or current == orders_pb2.ORDER_STATE_DELIVERED
        furthest = self.furthest_step()
        for index, (state, label) in enumerate(HAPPY_PATH):
            if state == current and not ended:
                mark: RenderableType = Spinner("dots", style="cyan")
                text = Text(label, style="bold")
            elif index <= furthest:
                mark, text = Text("✔", style="green"), Text(label)
            else:
                mark, text = Text("·", style="dim"), Text(label, style="dim")
            table.add_row(mark, text, self.reached.get(state, ""))
        for state, label in DETOURS.items():
            if state in self.reached:
                style = "yellow" if state != orders_pb2.ORDER_STATE_FAILED else "bold red"
                mark = (
                    Spinner("dots", style=style)
                    if state == current and not ended
                    else Text("●", style=style)
                )
                table.add_row(mark, Text(label, style=style), self.reached[state])
        parts: list[RenderableType] = [Text(f"order {self.order_id}", style="bold"), table]
        if self.order is not None and self.order.failure.reason:
            failure = self.order.failure
            parts.append(Text(f"{failure.reason}: {failure.message}", style="red"))
        if self.progress is not None and self.progress.workflow_running and not ended:
            parts.append(progress_table(self.progress))
        return Group(*parts)


def outcome(order: orders_pb2.Order | None, until: int | None) -> ExitCode:
    if order is not None and order.state in UNFULFILLED and until != order.state:
        return ExitCode.ORDER_ENDED_UNFULFILLED
    return ExitCode.OK


def _done(order: orders_pb2.Order, until: int | None) -> bool:
    return until is not None and order.state == until


async def watch_as_lines(
    orders: OrdersClient, order_id: str, *, as_json: bool, until: int | None
) -> ExitCode:
    """One line per change of state: for scripts, logs, and consoles that cannot redraw."""
    last = None
    async for order in orders.watch_order(order_id):
        last = order
        if as_json:
            print(json.dumps(as_dict(order)), flush=True)
        else:
            line = f"{when(order.update_time)}  {state_name(order.state)}"
            if order.failure.reason:
                line += f"  {order.failure.reason}: {order.failure.message}"
            print(line, flush=True)
        if _done(order, until):
            break
    return outcome(last, until)


async def watch_live(
    orders: OrdersClient, order_id: str, console: Console, *, until: int | None
) -> ExitCode:
    """The checklist, redrawn in place, then the order's full panel."""
    view = WatchView(order_id)

    async def follow_progress() -> None:
        # The stream tells changes of state; the workflow's step and attempts
        # change in between, so they are read now and then.
        while True:
            with contextlib.suppress(CallError):
                view.progress = (await orders.get_order(order_id, full=True)).progress
            await asyncio.sleep(1)

    with Live(view.render(), console=console, refresh_per_second=8) as live:
        poller = asyncio.create_task(follow_progress())
        try:
            async for order in orders.watch_order(order_id):
                view.saw(order)
                live.update(view.render())
                if _done(order, until):
                    break
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        live.update(view.render())
    if view.order is not None:
        console.print(order_panel(view.order))
    return outcome(view.order, until)
