"""What each change of a reservation does to the stock, and what it refuses.

Each change is one call of a function in the database (server/inventory/repository.py):
a refusal must roll back every line taken before it, and orders reserving the
same goods at once must neither oversell nor deadlock.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import grpc

from clients.errors import Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as pb
from server.inventory.repository import InventoryRepository
from tests.bookings.examples import new_order_id, refusal
from tests.bookings.test_reserve_stock import Inventory, lines_of, reserving, stocked
from tests.support.statements import noted_connection

PRICE = money_pb2.Money(currency_code="USD", amount_minor=1250)


async def levels(stock: Inventory, *skus: str) -> list[tuple[int, int]]:
    """(available, reserved) of each SKU."""
    found = [await stock.GetStock(pb.GetStockRequest(sku=sku)) for sku in skus]
    return [(item.quantity, item.reserved_quantity) for item in found]


async def holds_nothing(stock: Inventory, order_id: str) -> bool:
    code, error = await refusal(stock.GetReservation(pb.GetReservationRequest(order_id=order_id)))
    return (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.RESERVATION_NOT_FOUND)


async def test_a_line_out_of_stock_takes_back_the_lines_before_it(stock: Inventory) -> None:
    # "A-" sorts before "Z-": the first line is taken before the second fails.
    first, second = f"A-{uuid.uuid4().hex[:8]}", f"Z-{uuid.uuid4().hex[:8]}"
    for sku, quantity in [(first, 10), (second, 1)]:
        await stock.SetStock(pb.SetStockRequest(sku=sku, quantity=quantity, unit_price=PRICE))
    order_id = new_order_id()

    code, error = await refusal(stock.ReserveStock(reserving(order_id, (first, 4), (second, 2))))

    assert (code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, Reason.OUT_OF_STOCK)
    assert error.metadata == {"sku": second, "order_id": order_id}
    assert await levels(stock, first, second) == [(10, 0), (1, 0)]
    assert await holds_nothing(stock, order_id)
    # Nothing of the refusal stays behind: the order may reserve what there is.
    held = await stock.ReserveStock(reserving(order_id, (first, 4), (second, 1)))
    assert lines_of(held.reservation) == {first: 4, second: 1}
    assert await levels(stock, first, second) == [(6, 4), (0, 1)]


async def test_an_unknown_sku_is_not_found_and_nothing_is_held(stock: Inventory) -> None:
    mug = await stocked(stock, 5)
    unknown = f"ZZZ-{uuid.uuid4().hex[:8]}"
    order_id = new_order_id()

    code, error = await refusal(stock.ReserveStock(reserving(order_id, (mug, 1), (unknown, 1))))

    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.SKU_NOT_FOUND)
    assert error.metadata["sku"] == unknown
    assert await levels(stock, mug) == [(5, 0)]
    assert await holds_nothing(stock, order_id)


async def test_committing_takes_the_goods_off_the_shelf_once(stock: Inventory) -> None:
    mug, cup = await stocked(stock, 10), await stocked(stock, 10)
    order_id = new_order_id()
    await stock.ReserveStock(reserving(order_id, (mug, 3), (cup, 1)))

    for _ in range(2):
        committed = await stock.CommitReservation(pb.CommitReservationRequest(order_id=order_id))
        assert committed.reservation.state == pb.RESERVATION_STATE_COMMITTED
        assert lines_of(committed.reservation) == {mug: 3, cup: 1}
        assert await levels(stock, mug, cup) == [(7, 0), (9, 0)]


async def test_releasing_puts_reserved_and_committed_goods_back(stock: Inventory) -> None:
    mug = await stocked(stock, 10)
    reserved, committed = new_order_id(), new_order_id()
    await stock.ReserveStock(reserving(reserved, (mug, 2)))
    await stock.ReserveStock(reserving(committed, (mug, 3)))
    await stock.CommitReservation(pb.CommitReservationRequest(order_id=committed))
    assert await levels(stock, mug) == [(5, 2)]

    for _ in range(2):  # a second release changes nothing
        for order_id, lines in [(reserved, {mug: 2}), (committed, {mug: 3})]:
            released = await stock.ReleaseReservation(
                pb.ReleaseReservationRequest(order_id=order_id)
            )
            assert released.reservation.state == pb.RESERVATION_STATE_RELEASED
            assert lines_of(released.reservation) == lines
        assert await levels(stock, mug) == [(10, 0)]


async def test_a_release_before_the_reservation_refuses_it_later(stock: Inventory) -> None:
    mug = await stocked(stock, 10)
    order_id = new_order_id()

    released = await stock.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id))

    assert lines_of(released.reservation) == {}
    for late in [
        stock.ReserveStock(reserving(order_id, (mug, 1))),
        stock.CommitReservation(pb.CommitReservationRequest(order_id=order_id)),
    ]:
        code, error = await refusal(late)
        assert (code, error.reason) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            Reason.RESERVATION_RELEASED,
        )
    assert await levels(stock, mug) == [(10, 0)]


async def test_committing_what_was_never_reserved_is_not_found(stock: Inventory) -> None:
    code, error = await refusal(
        stock.CommitReservation(pb.CommitReservationRequest(order_id=new_order_id()))
    )
    assert (code, error.reason) == (grpc.StatusCode.NOT_FOUND, Reason.RESERVATION_NOT_FOUND)


async def test_orders_racing_for_the_last_units_neither_oversell_nor_deadlock(
    stock: Inventory,
) -> None:
    mug, cup = await stocked(stock, 10), await stocked(stock, 100)
    orders = [new_order_id() for _ in range(30)]

    # Half name the goods in one order, half in the other: the locks are
    # taken in SKU order all the same.
    outcomes = await asyncio.gather(
        *(
            stock.ReserveStock(
                reserving(order_id, *([(mug, 1), (cup, 2)] if i % 2 else [(cup, 2), (mug, 1)]))
            )
            for i, order_id in enumerate(orders)
        ),
        return_exceptions=True,
    )

    held = [o for o in outcomes if isinstance(o, pb.ReserveStockResponse)]
    refused = [o for o in outcomes if not isinstance(o, pb.ReserveStockResponse)]
    assert len(held) == 10
    assert all(
        isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.FAILED_PRECONDITION
        for o in refused
    ), refused
    assert await levels(stock, mug, cup) == [(0, 10), (80, 20)]


async def test_each_change_of_a_reservation_is_one_statement(
    database_url: str, inventory_pool: asyncpg.Pool
) -> None:
    # inventory_pool has migrated the schema.
    async with noted_connection(database_url) as noted:
        inventory = InventoryRepository(noted)  # type: ignore[arg-type]
        mug, cup = f"A-{uuid.uuid4().hex[:8]}", f"B-{uuid.uuid4().hex[:8]}"
        for sku in (mug, cup):
            await inventory.set_stock(sku, 10, "USD", 1250)
        warm_up, order_id = new_order_id(), new_order_id()
        await inventory.reserve(warm_up, {mug: 1})
        await inventory.commit(warm_up)
        await inventory.release(warm_up)

        changes = [
            lambda: inventory.reserve(order_id, {mug: 1, cup: 2}),
            lambda: inventory.commit(order_id),
            lambda: inventory.release(order_id),
        ]
        for change in changes:
            noted.statements.clear()
            await change()
            assert len(noted.statements) == 1, noted.statements

        after = await inventory.get_stock([mug, cup])
        assert {sku: (s.available, s.reserved) for sku, s in after.items()} == {
            mug: (10, 0),
            cup: (10, 0),
        }
