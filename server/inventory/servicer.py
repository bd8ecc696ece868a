"""inventory.v1.InventoryService over gRPC."""

from __future__ import annotations

import grpc
import structlog

from clients.errors import Error, Reason
from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2 as pb
from clients.proto.inventory.v1 import inventory_pb2_grpc
from server.core.validation import Violations
from server.inventory.repository import InventoryRepository, Reservation, StockItem

log = structlog.get_logger(__name__)

_STATES = {
    "RESERVED": pb.RESERVATION_STATE_RESERVED,
    "COMMITTED": pb.RESERVATION_STATE_COMMITTED,
    "RELEASED": pb.RESERVATION_STATE_RELEASED,
}
MAX_BATCH = 100
# Units of one SKU in stock or in one reservation; keeps every sum in int64.
MAX_UNITS = 10**12


def _item(item: StockItem) -> pb.StockItem:
    return pb.StockItem(
        sku=item.sku,
        quantity=item.available,
        reserved_quantity=item.reserved,
        unit_price=money_pb2.Money(
            currency_code=item.currency_code, amount_minor=item.unit_price_minor
        ),
    )


def _reservation(reservation: Reservation) -> pb.Reservation:
    return pb.Reservation(
        order_id=reservation.order_id,
        state=_STATES[reservation.state],
        lines=[pb.ReservationLine(sku=s, quantity=q) for s, q in reservation.lines.items()],
    )


def _require_order_id(order_id: str) -> None:
    Violations().require("order_id", order_id).raise_if_any()


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, repository: InventoryRepository) -> None:
        self._repository = repository

    async def SetStock(
        self, request: pb.SetStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetStockResponse:
        errors = Violations().sku("sku", request.sku)
        if not 0 <= request.quantity <= MAX_UNITS:
            errors.add("quantity", f"must be from 0 to {MAX_UNITS:,}")
        if not request.HasField("unit_price"):
            errors.add("unit_price", "is required")
        else:
            # Nothing is given away: a free line would make an order no card can pay.
            errors.money("unit_price", request.unit_price, positive=True)
        errors.raise_if_any()
        item = await self._repository.set_stock(
            request.sku,
            request.quantity,
            request.unit_price.currency_code,
            request.unit_price.amount_minor,
        )
        log.info("stock set", sku=item.sku, quantity=item.available)
        return pb.SetStockResponse(item=_item(item))

    async def GetStock(
        self, request: pb.GetStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStockResponse:
        Violations().sku("sku", request.sku).raise_if_any()
        found = await self._repository.get_stock([request.sku])
        if request.sku not in found:
            raise Error(
                Reason.SKU_NOT_FOUND, f"no SKU {request.sku} in the catalog", {"sku": request.sku}
            )
        item = _item(found[request.sku])
        return pb.GetStockResponse(
            sku=item.sku,
            quantity=item.quantity,
            reserved_quantity=item.reserved_quantity,
            unit_price=item.unit_price,
        )

    async def BatchGetStock(
        self, request: pb.BatchGetStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.BatchGetStockResponse:
        errors = Violations()
        if len(request.skus) > MAX_BATCH:
            errors.add("skus", f"at most {MAX_BATCH} SKUs per call")
        errors.raise_if_any()
        found = await self._repository.get_stock(list(request.skus))
        return pb.BatchGetStockResponse(
            items=[_item(found[sku]) for sku in dict.fromkeys(request.skus) if sku in found]
        )

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReserveStockResponse:
        errors = Violations().require("order_id", request.order_id)
        if not request.lines:
            errors.add("lines", "at least one line is required")
        lines: dict[str, int] = {}
        for i, line in enumerate(request.lines):
            errors.sku(f"lines[{i}].sku", line.sku)
            if not 1 <= line.quantity <= MAX_UNITS:
                errors.add(f"lines[{i}].quantity", f"must be from 1 to {MAX_UNITS:,}")
            lines[line.sku] = lines.get(line.sku, 0) + line.quantity
        if any(quantity > MAX_UNITS for quantity in lines.values()):
            errors.add("lines", f"at most {MAX_UNITS:,} units of one SKU")
        errors.raise_if_any()
        reservation = await self._repository.reserve(request.order_id, lines)
        log.info("stock reserved", order_id=request.order_id, lines=reservation.lines)
        return pb.ReserveStockResponse(reservation=_reservation(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CommitReservationResponse:
        _require_order_id(request.order_id)
        reservation = await self._repository.commit(request.order_id)
        log.info("reservation committed", order_id=request.order_id)
        return pb.CommitReservationResponse(reservation=_reservation(reservation))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.ReleaseReservationResponse:
        _require_order_id(request.order_id)
        reservation = await self._repository.release(request.order_id)
        log.info("reservation released", order_id=request.order_id)
        return pb.ReleaseReservationResponse(reservation=_reservation(reservation))

    async def GetReservation(
        self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetReservationResponse:
        _require_order_id(request.order_id)
        reservation = await self._repository.get_reservation(request.order_id)
        return pb.GetReservationResponse(reservation=_reservation(reservation))
