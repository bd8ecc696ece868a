"""Blocking versions of the typed clients, for scripts and notebooks.

Each runs its async client on an event loop of its own, in a background
thread, so it works the same from plain code and from code that already runs
a loop (a blocking call from inside a running loop would stall that loop,
but not deadlock on it). Methods have the async client's signatures; async
iterators become plain iterators.

    with SyncOrdersClient("127.0.0.1:50051", caller_credentials(token=...)) as orders:
        print(orders.get_order("ord_...").order.state)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar

from clients.channels import CallerCredentials
from clients.inventory import InventoryClient
from clients.orders import OrdersClient
from clients.payments import PaymentsClient
from clients.retry import RetryPolicy
from clients.service import DEFAULT_TIMEOUT_SECONDS, ServiceClient
from clients.shipping import ShippingClient

P = ParamSpec("P")
T = TypeVar("T")
Client = TypeVar("Client", bound=ServiceClient)


class _LoopThread:
    """An event loop running in a daemon thread, and a way to wait for its work."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    def iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        async def next_item() -> T:
            return await anext(stream)

        try:
            while True:
                try:
                    yield self.run(next_item())
                except StopAsyncIteration:
                    return
        finally:
            # A loop left early closes the stream (and its call) on the loop.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                self.run(aclose())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _Blocking(Generic[P, T]):
    """An async client method, called and waited for."""

    def __init__(self, method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]) -> None:
        self._method = method

    def __get__(self, facade: SyncClient[Any], owner: type) -> Callable[P, T]:
        def call(*args: P.args, **kwargs: P.kwargs) -> T:
            return facade._loop.run(self._method(facade.client, *args, **kwargs))

        call.__doc__ = self._method.__doc__
        return call


class _Iterating(Generic[P, T]):
    """An async client method that yields, as a plain iterator."""

    def __init__(self, method: Callable[Concatenate[Any, P], AsyncIterator[T]]) -> None:
        self._method = method

    def __get__(self, facade: SyncClient[Any], owner: type) -> Callable[P, Iterator[T]]:
        def call(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return facade._loop.iterate(self._method(facade.client, *args, **kwargs))

        call.__doc__ = self._method.__doc__
        return call


class SyncClient(Generic[Client]):
    """Owns a loop thread and the async client made on it; `close()` ends both."""

    client_class: type[Client]

    def __init__(
        self,
        target: str,
        credentials: CallerCredentials | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._loop = _LoopThread()

        # grpc.aio channels belong to the loop they are made on.
        async def make() -> Client:
            return self.client_class(target, credentials, timeout=timeout, retry=retry)

        self.client: Client = self._loop.run(make())

    def close(self) -> None:
        self._loop.run(self.client.close())
        self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class SyncOrdersClient(SyncClient[OrdersClient]):
    client_class = OrdersClient
    create_order = _Blocking(OrdersClient.create_order)
    send_create_order = _Blocking(OrdersClient.send_create_order)
    get_order = _Blocking(OrdersClient.get_order)
    list_orders = _Blocking(OrdersClient.list_orders)
    pages = _Iterating(OrdersClient.pages)
    iter_orders = _Iterating(OrdersClient.iter_orders)
    watch_order = _Iterating(OrdersClient.watch_order)
    cancel_order = _Blocking(OrdersClient.cancel_order)
    confirm_delivery = _Blocking(OrdersClient.confirm_delivery)
    update_shipping_address = _Blocking(OrdersClient.update_shipping_address)


class SyncInventoryClient(SyncClient[InventoryClient]):
    client_class = InventoryClient
    set_stock = _Blocking(InventoryClient.set_stock)
    get_stock = _Blocking(InventoryClient.get_stock)
    batch_get_stock = _Blocking(InventoryClient.batch_get_stock)
    get_reservation = _Blocking(InventoryClient.get_reservation)


class SyncPaymentsClient(SyncClient[PaymentsClient]):
    client_class = PaymentsClient
    list_payments = _Blocking(PaymentsClient.list_payments)
    get_payment = _Blocking(PaymentsClient.get_payment)


class SyncShippingClient(SyncClient[ShippingClient]):
    client_class = ShippingClient
    get_shipment = _Blocking(ShippingClient.get_shipment)


__all__ = [
    "SyncInventoryClient",
    "SyncOrdersClient",
    "SyncPaymentsClient",
    "SyncShippingClient",
]
