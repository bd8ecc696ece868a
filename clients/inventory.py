"""A typed async client of inventory.v1.InventoryService: the catalog's stock and prices."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import cast

from clients.proto.common.v1 import money_pb2
from clients.proto.inventory.v1 import inventory_pb2, inventory_pb2_grpc
from clients.service import ServiceClient


def money(amount_minor: int, currency_code: str) -> money_pb2.Money:
    """An amount in minor units: money(1250, "USD") is $12.50."""
    return money_pb2.Money(currency_code=currency_code, amount_minor=amount_minor)


class InventoryClient(ServiceClient):
    """Stocks the catalog and reads it (operators); reservations are the worker's."""

    @functools.cached_property
    def _stub(self) -> inventory_pb2_grpc.InventoryServiceAsyncStub:
        # The generated stubs type an aio channel's stub as the Async one.
        return cast(
            "inventory_pb2_grpc.InventoryServiceAsyncStub",
            inventory_pb2_grpc.InventoryServiceStub(self.channel),
        )

    async def set_stock(
        self, sku: str, quantity: int, unit_price: money_pb2.Money
    ) -> inventory_pb2.StockItem:
        """Sets the units available and the unit price of `sku`, creating it if needed."""
        request = inventory_pb2.SetStockRequest(sku=sku, quantity=quantity, unit_price=unit_price)
        return (await self._unary(self._stub.SetStock, request)).item

    async def get_stock(self, sku: str) -> inventory_pb2.StockItem:
        """The stock and price of one SKU; SKU_NOT_FOUND when the catalog lacks it."""
        response = await self._unary(self._stub.GetStock, inventory_pb2.GetStockRequest(sku=sku))
        return inventory_pb2.StockItem(
            sku=response.sku,
            quantity=response.quantity,
            reserved_quantity=response.reserved_quantity,
            unit_price=response.unit_price,
        )

    async def batch_get_stock(self, skus: Iterable[str]) -> list[inventory_pb2.StockItem]:
        """The stock of several SKUs, in the order asked; unknown SKUs are left out."""
        request = inventory_pb2.BatchGetStockRequest(skus=list(skus))
        return list((await self._unary(self._stub.BatchGetStock, request)).items)

    async def get_reservation(self, order_id: str) -> inventory_pb2.Reservation:
        """The stock an order holds."""
        request = inventory_pb2.GetReservationRequest(order_id=order_id)
        return (await self._unary(self._stub.GetReservation, request)).reservation
