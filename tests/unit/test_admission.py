"""Admission rules that need no stack: reads in progress, rates, and the switch."""

from __future__ import annotations

import pytest

from clients.errors import Error, Reason
from server.orders.admission import Admission, AdmissionLimits


def test_a_callers_reads_in_progress_are_capped_and_given_back() -> None:
    admission = Admission(AdmissionLimits(caller_reads=2))
    with admission.read("subject:a"), admission.read("subject:a"):
        with pytest.raises(Error) as refused, admission.read("subject:a"):
            pass
        assert refused.value.reason is Reason.RATE_LIMITED
        assert refused.value.retry_delay
        with admission.read("subject:b"):  # another caller's share is its own
            pass
    with admission.read("subject:a"):  # both given back
        pass


def test_a_rate_refusal_says_when_to_come_back() -> None:
    admission = Admission(AdmissionLimits(customer_order_rate="2 per 10 seconds"))
    for index in range(2):
        with admission.order("c1", f"ord_{index}"):
            pass
    with pytest.raises(Error) as refused, admission.order("c1", "ord_2"):
        pass
    assert refused.value.reason is Reason.RATE_LIMITED
    assert refused.value.metadata["rule"] == "customer_rate"
    assert refused.value.retry_delay is not None and 0 < refused.value.retry_delay <= 10
    with admission.order("c2", "ord_3"):
        pass


def test_an_order_that_fails_to_be_placed_frees_its_place_at_once() -> None:
    admission = Admission(AdmissionLimits(customer_in_flight=1))
    with pytest.raises(RuntimeError), admission.order("c1", "ord_1"):
        raise RuntimeError("the catalog refused it")
    with admission.order("c1", "ord_2"):  # not counted: it was never placed
        pass
    with pytest.raises(Error) as refused, admission.order("c1", "ord_3"):
        pass  # the one placed counts until a refresh sees it stored
    assert refused.value.metadata["rule"] == "customer_in_flight"


def test_switched_off_everything_is_admitted() -> None:
    admission = Admission(AdmissionLimits(enabled=False, customer_in_flight=1, caller_reads=1))
    for _ in range(5):
        with admission.order("c1", "ord_1"), admission.read("a"), admission.read("a"):
            pass
