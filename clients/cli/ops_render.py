"""How the operators' commands look to a person: an order's detail, the orders needing attention."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table

from clients.cli.render import order_panel, payments_table, progress_table, styled_state, when
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.operator.v1 import operator_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2
from clients.proto.shipping.v1 import shipping_pb2

_STATUS_STYLES = {
    "RUNNING": "green",
    "COMPLETED": "dim",
    "TERMINATED": "bold red",
    "TIMED_OUT": "bold red",
    "FAILED": "bold red",
    "CANCELED": "bold red",
    "NOT_FOUND": "yellow",
}


def workflow_status(status: int) -> str:
    name = operator_pb2.WorkflowStatus.Name(status).removeprefix("WORKFLOW_STATUS_")  # type: ignore[arg-type]
    style = _STATUS_STYLES.get(name)
    return f"[{style}]{name}[/]" if style else name


def action_kind(kind: int) -> str:
    """ "retry-step" for OPERATOR_ACTION_KIND_RETRY_STEP."""
    name = operator_pb2.OperatorActionKind.Name(kind)  # type: ignore[arg-type]
    return name.removeprefix("OPERATOR_ACTION_KIND_").lower().replace("_", "-")


def age(stamp_seconds: int, now: datetime | None = None) -> str:
    """How long ago, as "3d 4h", "2h 5m", "4m 10s" or "12s"."""
    if not stamp_seconds:
        return ""
    now = now or datetime.now(UTC)
    seconds = max(0, int(now.timestamp()) - stamp_seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def detail_view(detail: operator_pb2.GetOrderDetailResponse) -> RenderableType:
    """`orders ops show`: the order, its workflow, its holdings, its history, its actions."""
    order = detail.order
    workflow = Table.grid(padding=(0, 2))
    workflow.add_column(style="bold")
    workflow.add_column()
    workflow.add_row("workflow", workflow_status(detail.workflow_status))
    workflow.add_row("started", when(detail.workflow_start_time))
    if detail.HasField("workflow_close_time"):
        workflow.add_row("ended", when(detail.workflow_close_time))
    progress = detail.progress
    if progress.workflow_ended_outside_saga:
        workflow.add_row(
            "ended outside the saga", f"[bold red]{progress.workflow_ended_outside_saga}[/]"
        )
    parts: list[RenderableType] = [order_panel(order), workflow]
    if progress.workflow_running:
        parts += ["", progress_table(progress)]
        if progress.busy:
            parts.append("[dim]the workflow is in the middle of a step: read again for more[/]")
    parts += ["", holdings_table(detail)]
    if detail.payments:
        parts.append(payments_table(detail.payments))
    if detail.state_changes:
        parts += ["", history_table(detail.state_changes)]
    parts += ["", actions_table(detail.actions)]
    return Group(*parts)


def holdings_table(detail: operator_pb2.GetOrderDetailResponse) -> Table:
    table = Table("holds", "state", "what", title="holdings", title_justify="left")
    for payment in detail.payments:
        table.add_row("payment", _payment_state(payment.state), payment.payment_id)
    if detail.HasField("reservation"):
        reservation = detail.reservation
        goods = ", ".join(f"{line.sku} x{line.quantity}" for line in reservation.lines)
        state = inventory_pb2.ReservationState.Name(reservation.state)
        table.add_row("stock", state.removeprefix("RESERVATION_STATE_"), goods)
    if detail.HasField("shipment"):
        shipment = detail.shipment
        state = shipping_pb2.ShipmentState.Name(shipment.state)
        table.add_row(
            "shipment",
            state.removeprefix("SHIPMENT_STATE_"),
            f"{shipment.shipment_id} {shipment.tracking_number}".strip(),
        )
    for line in detail.holdings_unknown:
        table.add_row("?", "[yellow]unknown[/]", line)
    if not table.row_count:
        table.add_row("nothing", "", "no payment, reservation or shipment")
    return table


def _payment_state(state: int) -> str:
    return payments_pb2.PaymentState.Name(state).removeprefix("PAYMENT_STATE_")  # type: ignore[arg-type]


def history_table(changes: Iterable[operator_pb2.StateChange]) -> Table:
    table = Table("state", "since", title="history", title_justify="left")
    for change in changes:
        table.add_row(styled_state(change.state), when(change.record_time))
    return table


def actions_table(actions: Iterable[operator_pb2.OperatorAction]) -> Table:
    table = Table(
        "when", "action", "operator", "note", "result", title="actions", title_justify="left"
    )
    for action in actions:
        table.add_row(
            when(action.create_time),
            action_kind(action.kind),
            action.operator,
            action.note,
            action.result,
        )
    if not table.row_count:
        table.add_row("", "none", "", "", "")
    return table


def action_panel(action: operator_pb2.OperatorAction, order: orders_pb2.Order) -> Panel:
    """What an action did, as `orders ops retry|cancel|resolve` show it."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("action", f"{action_kind(action.kind)} ({action.action_id})")
    facts.add_row("by", action.operator or "-")
    facts.add_row("at", when(action.create_time))
    facts.add_row("note", action.note)
    facts.add_row("result", action.result)
    facts.add_row("order now", styled_state(order.state))
    if order.attention_required:
        facts.add_row("attention", "[bold red]still flagged[/]")
    return Panel(facts, title=f"order {action.order_id}", title_align="left")


def search_table(orders: Iterable[orders_pb2.Order], *, title: str = "") -> Table:
    """Orders as the operators look at them: how long in their state, why they failed."""
    now = datetime.now(UTC)
    table = Table(
        "order",
        "state",
        "for",
        "customer",
        "failure",
        "attention",
        "placed",
        title=title or None,
        title_justify="left",
    )
    for order in orders:
        table.add_row(
            order.order_id,
            styled_state(order.state),
            age(order.update_time.seconds, now),
            order.customer_id,
            order.failure.reason,
            "[bold red]yes[/]" if order.attention_required else "",
            when(order.create_time),
        )
    return table
