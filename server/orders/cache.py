"""Recently read orders, kept only for as long as they are known not to have changed.

GetOrder is the hottest call of the front door, and an order changes a few
times in its life but is read many times. Reads fill this cache; the NOTIFY
that follows every projection write (server/orders/events.py) empties the
entry of the order it names, before any watcher of that order is woken.

Two rules keep it from serving a stale order:

* a read that raced a change is not kept: every change moves a counter, and
  a read stores its result only if the counter did not move while it ran;
* while the LISTEN connection is down, changes could go unseen, so nothing is
  served from the cache until it is back (and then it starts empty).

Several front doors each keep their own cache; each hears every NOTIFY.
"""

from __future__ import annotations

from collections import OrderedDict

from server.orders.repository import StoredOrder

DEFAULT_SIZE = 10_000


class OrderCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self._size = size
        self._orders: OrderedDict[str, StoredOrder] = OrderedDict()
        self._changes = 0
        self._listening = False

    def get(self, order_id: str) -> StoredOrder | None:
        stored = self._orders.get(order_id)
        if stored is not None:
            self._orders.move_to_end(order_id)
        return stored

    def ticket(self) -> int:
        """Taken before a read from the database; `put` refuses its result if anything changed."""
        return self._changes

    def put(self, stored: StoredOrder, ticket: int) -> None:
        if not self._listening or ticket != self._changes:
            return
        self._orders[stored.order.order_id] = stored
        self._orders.move_to_end(stored.order.order_id)
        if len(self._orders) > self._size:
            self._orders.popitem(last=False)

    def changed(self, order_id: str) -> None:
        """The projection announced a new version of `order_id`."""
        self._changes += 1
        self._orders.pop(order_id, None)

    def listening(self, on: bool) -> None:
        """Whether changes are being heard; the cache is emptied either way."""
        self._changes += 1
        self._listening = on
        self._orders.clear()
