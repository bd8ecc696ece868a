"""The front door's order cache never keeps what may have changed."""

from __future__ import annotations

from clients.proto.orders.v1 import orders_pb2
from server.orders.cache import OrderCache
from server.orders.repository import StoredOrder


def stored(order_id: str, version: int = 1) -> StoredOrder:
    return StoredOrder(orders_pb2.Order(order_id=order_id), version, "fp")


def listening_cache(size: int = 10) -> OrderCache:
    cache = OrderCache(size)
    cache.listening(True)
    return cache


def test_a_read_is_kept_until_its_order_changes() -> None:
    cache = listening_cache()
    cache.put(stored("a"), cache.ticket())
    assert cache.get("a") == stored("a")

    cache.changed("a")

    assert cache.get("a") is None


def test_a_read_that_raced_a_change_is_not_kept() -> None:
    cache = listening_cache()
    ticket = cache.ticket()
    cache.changed("a")  # announced while the read was on its way

    cache.put(stored("a"), ticket)

    assert cache.get("a") is None


def test_nothing_is_kept_while_changes_cannot_be_heard() -> None:
    cache = listening_cache()
    cache.put(stored("a"), cache.ticket())

    cache.listening(False)
    assert cache.get("a") is None
    cache.put(stored("b"), cache.ticket())
    assert cache.get("b") is None

    cache.listening(True)
    cache.put(stored("b"), cache.ticket())
    assert cache.get("b") == stored("b")


def test_the_least_recently_read_order_goes_first() -> None:
    cache = listening_cache(size=2)
    for order_id in ("a", "b"):
        cache.put(stored(order_id), cache.ticket())
    cache.get("a")

    cache.put(stored("c"), cache.ticket())

    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
