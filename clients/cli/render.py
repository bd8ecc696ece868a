"""How results look: JSON for scripts, tables and panels for people."""

from __future__ import annotations

import json
from collections.abc import Iterable

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table

from clients.cli.money import format_money
from clients.orders import state_name
from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.inventory.v1 import inventory_pb2
from clients.proto.orders.v1 import orders_pb2
from clients.proto.payments.v1 import payments_pb2

STATE_STYLES = {
    "DELIVERED": "bold green",
    "SHIPPED": "green",
    "CANCELLED": "yellow",
    "CANCELLING": "yellow",
    "COMPENSATING": "red",
    "FAILED": "bold red",
    "DELIVERY_OVERDUE": "magenta",
}


def as_dict(message: Message) -> dict[str, object]:
    """A message as JSON-ready data: proto field names, enums by name, defaults included."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def print_json(document: object) -> None:
    print(json.dumps(document, indent=2))


def styled_state(state: int) -> str:
    name = state_name(state)
    style = STATE_STYLES.get(name)
    return f"[{style}]{name}[/]" if style else name


def when(stamp: Timestamp) -> str:
    if not stamp.seconds and not stamp.nanos:
        return ""
    return stamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")


def _address(address: address_pb2.PostalAddress) -> str:
    parts = [
        getattr(address, name)
        for name in ("name", "line1", "line2", "city", "region", "postal_code", "country_code")
    ]
    return ", ".join(part for part in parts if part)


def order_panel(order: orders_pb2.Order, progress: orders_pb2.OrderProgress | None = None) -> Panel:
    """One order, as `get` and the end of `watch` show it."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("state", styled_state(order.state))
    facts.add_row("customer", order.customer_id)
    facts.add_row("total", format_money(order.total))
    facts.add_row("ship to", _address(order.shipping_address))
    facts.add_row("placed", when(order.create_time))
    facts.add_row("changed", when(order.update_time))
    facts.add_row("request id", order.request_id)
    if order.payment_id:
        facts.add_row("payment", order.payment_id)
    if order.tracking_number:
        facts.add_row("tracking", order.tracking_number)
    if order.failure.reason:
        facts.add_row("failure", f"[red]{order.failure.reason}[/]: {order.failure.message}")
    if order.attention_required:
        facts.add_row("attention", "[bold red]undoing a step keeps failing: look into it[/]")
    lines = Table("sku", "quantity", "unit price", "line total", box=None, header_style="dim")
    for item in order.line_items:
        lines.add_row(
            item.sku,
            str(item.quantity),
            format_money(item.unit_price),
            format_money(item.line_total),
        )
    parts: list[RenderableType] = [facts, "", lines]
    if progress is not None and progress.workflow_running:
        parts += ["", progress_table(progress)]
    return Panel(Group(*parts), title=f"order {order.order_id}", title_align="left")


def progress_table(progress: orders_pb2.OrderProgress) -> Table:
    """What the order's workflow is doing now (GetOrder's full view)."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    step = progress.current_step or "between steps"
    if progress.current_step_attempt > 1:
        step += f" (attempt {progress.current_step_attempt})"
    table.add_row("now", step)
    if progress.last_attempt_failure:
        table.add_row("last failure", f"[red]{progress.last_attempt_failure}[/]")
    if progress.pending_compensations:
        table.add_row("would undo", ", ".join(progress.pending_compensations))
    if progress.failing_compensations:
        table.add_row("failing undo", f"[red]{', '.join(progress.failing_compensations)}[/]")
    if progress.cancel_requested:
        table.add_row("cancel", "requested")
    return table


def orders_table(orders: Iterable[orders_pb2.Order]) -> Table:
    table = Table("order", "state", "customer", "items", "total", "placed")
    for order in orders:
        table.add_row(
            order.order_id,
            styled_state(order.state),
            order.customer_id,
            str(sum(item.quantity for item in order.line_items)),
            format_money(order.total),
            when(order.create_time),
        )
    return table


def stock_table(items: Iterable[inventory_pb2.StockItem]) -> Table:
    table = Table("sku", "available", "reserved", "unit price")
    for item in items:
        table.add_row(
            item.sku, str(item.quantity), str(item.reserved_quantity), format_money(item.unit_price)
        )
    return table


def payments_table(payments: Iterable[payments_pb2.Payment]) -> Table:
    table = Table("payment", "state", "amount", "refunded", "card", "charged", "refunded at")
    for payment in payments:
        currency = payment.currency_code
        table.add_row(
            payment.payment_id,
            payments_pb2.PaymentState.Name(payment.state).removeprefix("PAYMENT_STATE_"),
            format_money(_money(payment.amount_minor, currency)),
            format_money(_money(payment.refunded_amount_minor, currency)),
            f"…{payment.card_last4}" if payment.card_last4 else "",
            when(payment.create_time),
            when(payment.refund_time),
        )
    return table


def _money(amount_minor: int, currency_code: str) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency_code, amount_minor=amount_minor)


def stdout() -> Console:
    return Console(highlight=False)
