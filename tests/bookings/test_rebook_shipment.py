"""RebookShipment moves an order's booking to another address, once."""

from __future__ import annotations

import asyncio

import grpc

from clients.errors import Reason
from clients.proto.common.v1 import address_pb2
from clients.proto.shipping.v1 import shipping_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2_grpc
from tests.bookings.conftest import SLOW_BOOKING_SECONDS
from tests.bookings.examples import HOME, OFFICE, new_order_id, refusal

Shipping = shipping_pb2_grpc.ShippingServiceStub


def rebooking(
    order_id: str, address: address_pb2.PostalAddress = OFFICE, items: int = 2
) -> pb.RebookShipmentRequest:
    return pb.RebookShipmentRequest(order_id=order_id, address=address, item_count=items)


async def booked(shipping: Shipping, order_id: str) -> pb.Shipment:
    request = pb.CreateShipmentRequest(order_id=order_id, address=HOME, item_count=2)
    return (await shipping.CreateShipment(request)).shipment


async def test_a_booking_moves_to_the_new_address_under_a_new_tracking_number(
    carrier: Shipping,
) -> None:
    order_id = new_order_id()
    first = await booked(carrier, order_id)

    moved = (await carrier.RebookShipment(rebooking(order_id))).shipment

    assert moved.address == OFFICE
    assert moved.state == pb.SHIPMENT_STATE_BOOKED
    assert moved.tracking_number and moved.tracking_number != first.tracking_number
    assert moved.shipment_id == first.shipment_id
    read = await carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))
    assert read.shipment == moved
    # The order's booking is now the moved one: asking for it again is no news.
    again = await carrier.CreateShipment(
        pb.CreateShipmentRequest(order_id=order_id, address=OFFICE, item_count=2)
    )
    assert again.shipment == moved


async def test_rebooking_to_the_address_it_has_changes_nothing(carrier: Shipping) -> None:
    order_id = new_order_id()
    await booked(carrier, order_id)
    moved = (await carrier.RebookShipment(rebooking(order_id))).shipment

    again = (await carrier.RebookShipment(rebooking(order_id))).shipment

    assert again == moved


async def test_a_slow_carrier_books_the_new_address_after_a_while(slow_carrier: Shipping) -> None:
    order_id = new_order_id()
    await booked(slow_carrier, order_id)
    await asyncio.sleep(SLOW_BOOKING_SECONDS + 0.1)
    first = (await slow_carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))).shipment
    assert first.state == pb.SHIPMENT_STATE_BOOKED

    moved = (await slow_carrier.RebookShipment(rebooking(order_id))).shipment
    assert (moved.state, moved.tracking_number) == (pb.SHIPMENT_STATE_BOOKING, "")

    await asyncio.sleep(SLOW_BOOKING_SECONDS + 0.1)
    done = (await slow_carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))).shipment
    assert done.state == pb.SHIPMENT_STATE_BOOKED
    assert done.address == OFFICE
    assert done.tracking_number and done.tracking_number != first.tracking_number


async def test_a_cancelled_shipment_is_not_booked_again(carrier: Shipping) -> None:
    order_id = new_order_id()
    await booked(carrier, order_id)
    await carrier.CancelShipment(pb.CancelShipmentRequest(order_id=order_id))

    code, error = await refusal(carrier.RebookShipment(rebooking(order_id)))

    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.SHIPMENT_CANCELLED)
    kept = await carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))
    assert (kept.shipment.state, kept.shipment.address) == (pb.SHIPMENT_STATE_CANCELLED, HOME)


async def test_an_order_cancelled_before_any_booking_is_not_booked(carrier: Shipping) -> None:
    order_id = new_order_id()
    await carrier.CancelShipment(pb.CancelShipmentRequest(order_id=order_id))

    _, error = await refusal(carrier.RebookShipment(rebooking(order_id)))

    assert error.reason == Reason.SHIPMENT_CANCELLED


async def test_an_order_without_a_shipment_has_nothing_to_rebook(carrier: Shipping) -> None:
    order_id = new_order_id()

    code, error = await refusal(carrier.RebookShipment(rebooking(order_id)))

    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.SHIPMENT_NOT_FOUND)
    assert error.metadata["order_id"] == order_id


async def test_the_carrier_must_deliver_to_the_new_address(carrier: Shipping) -> None:
    order_id = new_order_id()
    first = await booked(carrier, order_id)
    nowhere = address_pb2.PostalAddress()
    nowhere.CopyFrom(OFFICE)
    nowhere.country_code = "ZZ"

    _, error = await refusal(carrier.RebookShipment(rebooking(order_id, nowhere)))

    assert error.reason == Reason.ADDRESS_UNDELIVERABLE
    kept = await carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))
    assert kept.shipment == first
