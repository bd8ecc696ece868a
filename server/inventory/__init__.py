"""The inventory service: stock, prices and reservations."""

from __future__ import annotations

import asyncpg
import grpc

from clients.proto.inventory.v1 import inventory_pb2_grpc
from server.core.service import ServiceSpec
from server.core.settings import Settings


async def _register(server: grpc.aio.Server, settings: Settings, pool: asyncpg.Pool) -> None:
    from server.inventory.repository import InventoryRepository
    from server.inventory.servicer import InventoryServicer

    inventory_pb2_grpc.add_InventoryServiceServicer_to_server(
        InventoryServicer(InventoryRepository(pool)), server
    )


SERVICE = ServiceSpec(
    name="inventory",
    full_name="inventory.v1.InventoryService",
    register=_register,
)
