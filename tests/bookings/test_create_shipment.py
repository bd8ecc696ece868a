"""CreateShipment asked again for an order: the same booking is answered, another is refused."""

from __future__ import annotations

import grpc

from clients.errors import Reason
from clients.proto.common.v1 import address_pb2
from clients.proto.shipping.v1 import shipping_pb2 as pb
from clients.proto.shipping.v1 import shipping_pb2_grpc
from tests.bookings.examples import HOME, OFFICE, new_order_id, refusal

Shipping = shipping_pb2_grpc.ShippingServiceStub


def booking(
    order_id: str, address: address_pb2.PostalAddress = HOME, items: int = 2
) -> pb.CreateShipmentRequest:
    return pb.CreateShipmentRequest(order_id=order_id, address=address, item_count=items)


async def test_the_same_booking_twice_is_one_shipment(carrier: Shipping) -> None:
    order_id = new_order_id()
    first = (await carrier.CreateShipment(booking(order_id))).shipment
    again = (await carrier.CreateShipment(booking(order_id))).shipment
    assert again == first
    assert first.state == pb.SHIPMENT_STATE_BOOKED


async def test_an_address_is_the_same_however_it_was_written(carrier: Shipping) -> None:
    order_id = new_order_id()
    first = (await carrier.CreateShipment(booking(order_id))).shipment
    # An empty optional field and a country code in lower case are the
    # address already booked: it is stored without the one, upper-cased.
    written_otherwise = address_pb2.PostalAddress()
    written_otherwise.CopyFrom(HOME)
    written_otherwise.line2 = ""
    written_otherwise.country_code = "gb"
    again = (await carrier.CreateShipment(booking(order_id, written_otherwise))).shipment
    assert again.shipment_id == first.shipment_id
    assert again.tracking_number == first.tracking_number


async def test_another_address_is_refused_and_names_what_differs(carrier: Shipping) -> None:
    order_id = new_order_id()
    first = (await carrier.CreateShipment(booking(order_id))).shipment

    code, error = await refusal(carrier.CreateShipment(booking(order_id, OFFICE)))

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == Reason.SHIPMENT_DIFFERS
    assert error.metadata["order_id"] == order_id
    assert error.metadata["shipment_id"] == first.shipment_id
    assert error.metadata["mismatched_fields"] == "address"
    # Nothing moved: the parcel still goes where it was booked to.
    kept = await carrier.GetShipment(pb.GetShipmentRequest(order_id=order_id))
    assert kept.shipment == first


async def test_another_item_count_is_refused(carrier: Shipping) -> None:
    order_id = new_order_id()
    await carrier.CreateShipment(booking(order_id))

    code, error = await refusal(carrier.CreateShipment(booking(order_id, OFFICE, items=3)))

    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.SHIPMENT_DIFFERS)
    assert error.metadata["mismatched_fields"] == "address,item_count"


async def test_a_cancelled_shipment_stays_cancelled_whatever_is_asked(carrier: Shipping) -> None:
    order_id = new_order_id()
    await carrier.CreateShipment(booking(order_id))
    await carrier.CancelShipment(pb.CancelShipmentRequest(order_id=order_id))

    _, error = await refusal(carrier.CreateShipment(booking(order_id, OFFICE)))

    assert error.reason == Reason.SHIPMENT_CANCELLED
