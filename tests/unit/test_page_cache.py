"""The cache of ListOrders answers never keeps a page whose customer's orders may have changed."""

from __future__ import annotations

from server.orders.page_cache import EVERY_CUSTOMER, PageCache


def listening_cache(max_bytes: int = 1000) -> PageCache:
    cache = PageCache(max_bytes)
    cache.listening(True)
    return cache


def test_an_answer_is_kept_until_an_order_of_its_customer_is_written() -> None:
    cache = listening_cache()
    cache.put("alice", "first page", b"alice's orders", cache.ticket())
    cache.put("bob", "first page", b"bob's orders", cache.ticket())
    assert cache.get("alice", "first page") == b"alice's orders"

    cache.changed("alice")

    assert cache.get("alice", "first page") is None
    assert cache.get("bob", "first page") == b"bob's orders"


def test_every_customers_pages_are_forgotten_on_any_write() -> None:
    cache = listening_cache()
    cache.put(EVERY_CUSTOMER, "first page", b"everyone's orders", cache.ticket())

    cache.changed("bob")

    assert cache.get(EVERY_CUSTOMER, "first page") is None


def test_each_request_has_its_own_answer() -> None:
    cache = listening_cache()
    cache.put("alice", ("page", 10), b"ten", cache.ticket())
    cache.put("alice", ("page", 20), b"twenty", cache.ticket())

    assert cache.get("alice", ("page", 10)) == b"ten"
    assert cache.get("alice", ("page", 20)) == b"twenty"
    assert cache.get("alice", ("page", 30)) is None


def test_an_answer_read_while_a_write_was_announced_is_not_kept() -> None:
    cache = listening_cache()
    ticket = cache.ticket()
    cache.changed("bob")  # any customer's: the count is the process's

    cache.put("alice", "first page", b"maybe stale", ticket)

    assert cache.get("alice", "first page") is None


def test_nothing_is_kept_while_writes_cannot_be_heard() -> None:
    cache = listening_cache()
    cache.put("alice", "first page", b"orders", cache.ticket())

    cache.listening(False)
    assert not cache.live
    assert cache.get("alice", "first page") is None
    cache.put("alice", "first page", b"orders", cache.ticket())
    assert cache.get("alice", "first page") is None

    cache.listening(True)
    cache.put("alice", "first page", b"orders", cache.ticket())
    assert cache.get("alice", "first page") == b"orders"


def test_the_least_recently_read_answers_go_first_when_the_bytes_run_out() -> None:
    cache = listening_cache(max_bytes=10)
    cache.put("alice", "a", b"xxxx", cache.ticket())
    cache.put("bob", "b", b"xxxx", cache.ticket())
    cache.get("alice", "a")

    cache.put("carol", "c", b"xxxx", cache.ticket())  # 12 bytes: one must go

    assert cache.get("bob", "b") is None
    assert cache.get("alice", "a") == b"xxxx"
    assert cache.get("carol", "c") == b"xxxx"
    # Bob's key went with his answer: a write of his forgets nothing else.
    cache.changed("bob")
    assert cache.get("alice", "a") == b"xxxx"


def test_an_answer_larger_than_the_cache_is_not_kept() -> None:
    cache = listening_cache(max_bytes=10)
    cache.put("alice", "a", b"xxxx", cache.ticket())

    cache.put("bob", "b", b"x" * 11, cache.ticket())

    assert cache.get("bob", "b") is None
    assert cache.get("alice", "a") == b"xxxx"


def test_an_answer_given_again_replaces_the_first() -> None:
    cache = listening_cache(max_bytes=10)
    cache.put("alice", "a", b"xxxx", cache.ticket())
    cache.put("alice", "a", b"yyyyyy", cache.ticket())
    cache.put("bob", "b", b"zzzz", cache.ticket())  # 10 bytes in all: nothing goes

    assert cache.get("alice", "a") == b"yyyyyy"
    assert cache.get("bob", "b") == b"zzzz"
