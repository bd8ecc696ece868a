"""ListOrders answers recently given, kept only while their customer's orders are known unchanged.

A page is a query over many orders, ten to five hundred of them framed into
one answer (listing.py): it costs the front door several times a GetOrder.
A customer's list is read again and again (a shop's "my orders" page) and
changes a few times per order. Each answer is kept under the request that
asked for it, and forgotten when any order of its customer is written: a
trigger announces the customer of every write (migration 0012), and the
process's LISTEN connection (events.py) passes it on. A page of every
customer's orders (an operator's, with no customer given) is forgotten on
any write.

The rules of the order cache (cache.py) hold here too: an answer read while
a write was announced is not kept, and nothing is kept or served while the
LISTEN connection is down. A process forgets, at once, the customer of a
write it made itself (placing.py, changing.py), so that its caller's next
list shows it without waiting for the announcement.

Its size is counted in bytes: a page of five hundred orders weighs as much
as five hundred pages of one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

# Enough for a few thousand customers' first pages of ten orders each.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024

# A page of all customers' orders is kept under this customer.
EVERY_CUSTOMER = ""


class PageCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._bytes = 0
        self._answers: OrderedDict[tuple[str, Hashable], bytes] = OrderedDict()
        # The keys of each customer's answers, to forget them together.
        self._keys_of: dict[str, set[Hashable]] = {}
        self._changes = 0
        self._listening = False

    @property
    def live(self) -> bool:
        """Whether answers are kept: writes are being heard."""
        return self._listening

    def get(self, customer_id: str, request: Hashable) -> bytes | None:
        key = (customer_id, request)
        answer = self._answers.get(key)
        if answer is not None:
            self._answers.move_to_end(key)
        return answer

    def ticket(self) -> int:
        """Taken before a page is read; `put` refuses the answer if a write was announced since."""
        return self._changes

    def put(self, customer_id: str, request: Hashable, answer: bytes, ticket: int) -> None:
        if not self._listening or ticket != self._changes or len(answer) > self._max_bytes:
            return
        key = (customer_id, request)
        previous = self._answers.pop(key, None)
        if previous is not None:
            self._bytes -= len(previous)
        self._answers[key] = answer
        self._keys_of.setdefault(customer_id, set()).add(request)
        self._bytes += len(answer)
        while self._bytes > self._max_bytes:
            (oldest_customer, oldest_request), evicted = self._answers.popitem(last=False)
            self._bytes -= len(evicted)
            self._forget_key(oldest_customer, oldest_request)

    def changed(self, customer_id: str) -> None:
        """An order of `customer_id` was written: its pages, and every customer's, are forgotten."""
        self._changes += 1
        self._forget(customer_id)
        self._forget(EVERY_CUSTOMER)

    def listening(self, on: bool) -> None:
        """Whether writes are being heard; the cache is emptied either way."""
        self._changes += 1
        self._listening = on
        self._answers.clear()
        self._keys_of.clear()
        self._bytes = 0

    def _forget(self, customer_id: str) -> None:
        for request in self._keys_of.pop(customer_id, ()):
            self._bytes -= len(self._answers.pop((customer_id, request)))

    def _forget_key(self, customer_id: str, request: Hashable) -> None:
        keys = self._keys_of[customer_id]
        keys.discard(request)
        if not keys:
            del self._keys_of[customer_id]
