"""The booking steps send the parcel where the order says, even when it was booked elsewhere.

The real activities, against the real shipping service: a shipment booked to
one address, then the step run for the order with another.
"""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from temporalio.testing import ActivityEnvironment

from clients.proto.shipping.v1 import shipping_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2_grpc
from tests.bookings.examples import HOME, OFFICE, new_order_id
from worker.activities import OrderActivities
from worker.model import Address, ShippingInput

Shipping = shipping_pb2_grpc.ShippingServiceStub
REBOOKED = "order_shipments_rebooked_total"
REBOOKED_LINE = "shipment rebooked: the order's address changed after it was booked"


def activities_on(shipping: Shipping) -> OrderActivities:
    unused = None
    return OrderActivities(
        payments=unused,  # type: ignore[arg-type]
        inventory=unused,  # type: ignore[arg-type]
        shipping=shipping,
        orders=unused,  # type: ignore[arg-type]
        shipping_poll_seconds=0.05,
    )


async def booked_at_home(shipping: Shipping, order_id: str) -> pb.Shipment:
    request = pb.CreateShipmentRequest(order_id=order_id, address=HOME, item_count=2)
    return (await shipping.CreateShipment(request)).shipment


def rebooked() -> float:
    return REGISTRY.get_sample_value(REBOOKED) or 0.0


async def test_book_shipment_moves_a_booking_to_the_orders_address(
    carrier: Shipping, caplog: pytest.LogCaptureFixture
) -> None:
    order_id = new_order_id()
    first = await booked_at_home(carrier, order_id)
    before = rebooked()

    with caplog.at_level(logging.WARNING):
        shipped = await ActivityEnvironment().run(
            activities_on(carrier).book_shipment,
            ShippingInput(order_id, Address.from_proto(OFFICE), 2),
        )

    shipment = (await carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))).shipment
    assert shipment.address == OFFICE
    assert shipped is not None
    assert (shipped.shipment_id, shipped.tracking_number) == (
        shipment.shipment_id,
        shipment.tracking_number,
    )
    assert shipped.tracking_number != first.tracking_number
    assert rebooked() == before + 1
    # The activity's logger appends the activity's context to the line.
    [warning] = [r for r in caplog.records if r.getMessage().startswith(REBOOKED_LINE)]
    assert warning.levelno == logging.WARNING
    assert warning.mismatched_fields == "address"


async def test_book_shipment_leaves_a_booking_to_the_orders_address_alone(
    carrier: Shipping,
) -> None:
    order_id = new_order_id()
    first = await booked_at_home(carrier, order_id)
    before = rebooked()

    shipped = await ActivityEnvironment().run(
        activities_on(carrier).book_shipment,
        ShippingInput(order_id, Address.from_proto(HOME), 2),
    )

    assert shipped is not None
    assert shipped.tracking_number == first.tracking_number
    assert rebooked() == before


async def test_arrange_shipping_waits_for_the_moved_booking(slow_carrier: Shipping) -> None:
    order_id = new_order_id()
    await booked_at_home(slow_carrier, order_id)

    shipped = await ActivityEnvironment().run(
        activities_on(slow_carrier).arrange_shipping,
        ShippingInput(order_id, Address.from_proto(OFFICE), 2),
    )

    shipment = (await slow_carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))).shipment
    assert (shipment.state, shipment.address) == (pb.SHIPMENT_STATE_BOOKED, OFFICE)
    assert shipped.tracking_number == shipment.tracking_number
