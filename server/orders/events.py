"""Fan-out of order changes to WatchOrder streams.

One LISTEN connection per process, however many watchers: Postgres NOTIFYs
the order id after each projection write, and each watcher of that order is
woken to read what changed from `order_events`. Watchers also wake up on
their own now and then, so a notification lost while the connection was
being re-established only delays them.

The same connection hears the customer of every write of an order (channel
`order_customers`, migration 0012), for the cache of ListOrders pages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator

import asyncpg
import structlog

from server.orders.cache import OrderCache
from server.orders.page_cache import PageCache
from server.orders.projection import CUSTOMERS_CHANNEL, NOTIFY_CHANNEL

log = structlog.get_logger(__name__)


class OrderEvents:
    def __init__(
        self,
        database_url: str,
        cache: OrderCache | None = None,
        pages: PageCache | None = None,
    ) -> None:
        self._database_url = database_url
        # Told of every change first, so a woken watcher never reads a stale entry.
        self._cache = cache
        self._pages = pages
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="order-events-listener")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @contextlib.contextmanager
    def watch(self, order_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever `order_id` may have changed."""
        event = asyncio.Event()
        self._watchers[order_id].add(event)
        try:
            yield event
        finally:
            watchers = self._watchers[order_id]
            watchers.discard(event)
            if not watchers:
                del self._watchers[order_id]

    def written_here(self, order_id: str, customer_id: str) -> None:
        """This process committed a write of `order_id`: the caches forget it now.

        Its NOTIFYs will say so too, but they may arrive after the writer has
        answered its caller, whose next read should show what it wrote.
        """
        if self._cache is not None:
            self._cache.changed(order_id)
        if self._pages is not None:
            self._pages.changed(customer_id)

    def _notify(self, _conn: object, _pid: int, _channel: str, order_id: str) -> None:
        if self._cache is not None:
            self._cache.changed(order_id)
        for event in self._watchers.get(order_id, ()):
            event.set()

    def _customer_written(self, _conn: object, _pid: int, _channel: str, customer: str) -> None:
        if self._pages is not None:
            self._pages.changed(customer)

    def _hearing(self, on: bool) -> None:
        if self._cache is not None:
            self._cache.listening(on)
        if self._pages is not None:
            self._pages.listening(on)

    def _wake_everyone(self) -> None:
        for watchers in self._watchers.values():
            for event in watchers:
                event.set()

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._database_url)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("cannot listen for order events; retrying", error=str(error))
                await asyncio.sleep(1)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            try:
                await conn.add_listener(NOTIFY_CHANNEL, self._notify)
                await conn.add_listener(CUSTOMERS_CHANNEL, self._customer_written)
                self._hearing(True)
                self._wake_everyone()  # whatever happened while we were away
                await lost.wait()
                log.warning("order events connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                # Lost while subscribing: connect again, as when lost later.
                log.warning("cannot listen for order events; retrying", error=str(error))
                await asyncio.sleep(1)
            finally:
                self._hearing(False)
                with contextlib.suppress(Exception):
                    await conn.close()
