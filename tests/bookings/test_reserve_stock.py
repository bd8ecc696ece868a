"""ReserveStock asked again for an order: the same lines are answered, other lines refused."""

from __future__ import annotations

import uuid

import grpc
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as pb
from clients.proto.inventory.v1 import inventory_pb2_grpc
from tests.bookings.examples import new_order_id, refusal
from worker.activities import OrderActivities
from worker.model import Line, ReserveInput

Inventory = inventory_pb2_grpc.InventoryServiceStub


async def stocked(inventory: Inventory, quantity: int = 10) -> str:
    sku = f"MUG-{uuid.uuid4().hex[:8]}"
    price = money_pb2.Money(currency_code="USD", amount_minor=1250)
    await inventory.SetStock(pb.SetStockRequest(sku=sku, quantity=quantity, unit_price=price))
    return sku


def reserving(order_id: str, *lines: tuple[str, int]) -> pb.ReserveStockRequest:
    return pb.ReserveStockRequest(
        order_id=order_id, lines=[pb.ReservationLine(sku=s, quantity=q) for s, q in lines]
    )


def lines_of(reservation: pb.Reservation) -> dict[str, int]:
    return {line.sku: line.quantity for line in reservation.lines}


async def test_the_same_lines_again_are_the_same_reservation(stock: Inventory) -> None:
    mug, cup = await stocked(stock), await stocked(stock)
    order_id = new_order_id()
    first = await stock.ReserveStock(reserving(order_id, (mug, 2), (cup, 1)))
    # The same goods, written in another order and split over two lines.
    again = await stock.ReserveStock(reserving(order_id, (cup, 1), (mug, 1), (mug, 1)))
    assert lines_of(again.reservation) == lines_of(first.reservation) == {mug: 2, cup: 1}
    assert again.reservation.state == pb.RESERVATION_STATE_RESERVED
    left = await stock.GetStock(pb.GetStockRequest(sku=mug))
    assert (left.quantity, left.reserved_quantity) == (8, 2)


async def test_other_lines_are_refused_and_nothing_more_is_reserved(stock: Inventory) -> None:
    mug, cup = await stocked(stock), await stocked(stock)
    order_id = new_order_id()
    await stock.ReserveStock(reserving(order_id, (mug, 2)))

    for other in [((mug, 3),), ((mug, 2), (cup, 1)), ((cup, 2),)]:
        code, error = await refusal(stock.ReserveStock(reserving(order_id, *other)))
        assert (code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            Reason.RESERVATION_DIFFERS,
        )
        assert error.metadata["order_id"] == order_id

    held = await stock.GetReservation(pb.GetReservationRequest(order_id=order_id))
    assert lines_of(held.reservation) == {mug: 2}
    for sku, reserved in [(mug, 2), (cup, 0)]:
        level = await stock.GetStock(pb.GetStockRequest(sku=sku))
        assert (level.quantity, level.reserved_quantity) == (10 - reserved, reserved)


async def test_a_committed_reservation_differs_as_well(stock: Inventory) -> None:
    mug = await stocked(stock)
    order_id = new_order_id()
    await stock.ReserveStock(reserving(order_id, (mug, 2)))
    await stock.CommitReservation(pb.CommitReservationRequest(order_id=order_id))

    _, error = await refusal(stock.ReserveStock(reserving(order_id, (mug, 1))))

    assert error.reason == Reason.RESERVATION_DIFFERS


async def test_the_reserving_step_fails_for_good_on_other_lines(stock: Inventory) -> None:
    mug = await stocked(stock)
    order_id = new_order_id()
    await stock.ReserveStock(reserving(order_id, (mug, 2)))
    unused = None
    activities = OrderActivities(
        payments=unused,  # type: ignore[arg-type]
        inventory=stock,
        shipping=unused,  # type: ignore[arg-type]
        orders=unused,  # type: ignore[arg-type]
    )
    request = ReserveInput(order_id, [Line(mug, 1, 1250)])

    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(activities.reserve_stock, request)

    assert failed.value.type == Reason.RESERVATION_DIFFERS.value
    assert failed.value.non_retryable
