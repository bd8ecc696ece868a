"""The fault audit's booking rules (tests/faults/audit.py), read from the real services.

A shipped order must have reserved exactly its lines and shipped to its own
address; the audit reports the order otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from clients.proto.common.v1 import address_pb2, money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as inv
from clients.proto.inventory.v1 import inventory_pb2_grpc
from clients.proto.orders.v1 import orders_pb2
from clients.proto.shipping.v1 import shipping_pb2 as ship
from clients.proto.shipping.v1 import shipping_pb2_grpc
from tests.bookings.examples import HOME, OFFICE, new_order_id
from tests.faults.audit import Auditor
from tests.support.stack import Stack


@dataclass
class Services:
    """The part of a stack the audit's booking rules read."""

    shipping: shipping_pb2_grpc.ShippingServiceStub
    inventory: inventory_pb2_grpc.InventoryServiceStub


async def shipped_order(
    carrier: shipping_pb2_grpc.ShippingServiceStub,
    stock: inventory_pb2_grpc.InventoryServiceStub,
    *,
    reserved: int,
    shipped_to: address_pb2.PostalAddress,
) -> orders_pb2.Order:
    """A shipped order of 2 mugs to HOME, whose goods and parcel went as given."""
    order_id, sku = new_order_id(), f"MUG-{uuid.uuid4().hex[:8]}"
    price = money_pb2.Money(currency_code="USD", amount_minor=1250)
    await stock.SetStock(inv.SetStockRequest(sku=sku, quantity=10, unit_price=price))
    await stock.ReserveStock(
        inv.ReserveStockRequest(
            order_id=order_id, lines=[inv.ReservationLine(sku=sku, quantity=reserved)]
        )
    )
    await stock.CommitReservation(inv.CommitReservationRequest(order_id=order_id))
    booking = ship.CreateShipmentRequest(order_id=order_id, address=shipped_to, item_count=2)
    shipment = (await carrier.CreateShipment(booking)).shipment
    return orders_pb2.Order(
        order_id=order_id,
        state=orders_pb2.ORDER_STATE_SHIPPED,
        line_items=[orders_pb2.LineItem(sku=sku, quantity=2)],
        shipping_address=HOME,
        tracking_number=shipment.tracking_number,
    )


async def audited(
    carrier: shipping_pb2_grpc.ShippingServiceStub,
    stock: inventory_pb2_grpc.InventoryServiceStub,
    order: orders_pb2.Order,
) -> Auditor:
    auditor = Auditor(cast(Stack, Services(carrier, stock)))
    await auditor._check_shipment(order, settled=True, shipped=True)
    await auditor._check_reservation(order, settled=True, shipped=True)
    return auditor


async def test_an_order_shipped_as_it_says_is_no_finding(
    carrier: shipping_pb2_grpc.ShippingServiceStub,
    stock: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    order = await shipped_order(carrier, stock, reserved=2, shipped_to=HOME)
    found = (await audited(carrier, stock, order)).findings
    assert (found.shipment_errors, found.stock_errors, found.unreadable) == ([], [], [])


async def test_a_parcel_sent_elsewhere_is_a_finding(
    carrier: shipping_pb2_grpc.ShippingServiceStub,
    stock: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    order = await shipped_order(carrier, stock, reserved=2, shipped_to=OFFICE)
    found = (await audited(carrier, stock, order)).findings
    [finding] = found.shipment_errors
    assert order.order_id in finding and "another address" in finding
    assert found.stock_errors == []


async def test_other_reserved_lines_are_a_finding(
    carrier: shipping_pb2_grpc.ShippingServiceStub,
    stock: inventory_pb2_grpc.InventoryServiceStub,
) -> None:
    order = await shipped_order(carrier, stock, reserved=3, shipped_to=HOME)
    found = (await audited(carrier, stock, order)).findings
    [finding] = found.stock_errors
    assert order.order_id in finding and "reserved" in finding
    assert found.shipment_errors == []
