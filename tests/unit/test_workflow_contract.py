"""The order workflow answers to its contract (worker/contract.py), and only to it.

The front door starts the workflow and sends its updates, queries and signals
by the names in the contract, with the types it lists: every handler of the
workflow must be there under the same name, taking and answering those types.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from temporalio.workflow import _Definition

from worker import contract
from worker.workflows import OrderWorkflow

DEFINITION = _Definition.must_from_class(OrderWorkflow)


def _signature(fn: Callable[..., Any]) -> tuple[tuple[type, ...], Any]:
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters)[1:]  # without self
    return tuple(hints[name] for name in params), hints.get("return")


def test_the_workflow_runs_under_the_contracts_name_input_and_result() -> None:
    assert DEFINITION.name == contract.NAME
    assert DEFINITION.arg_types == [contract.INPUT_TYPE]
    assert DEFINITION.ret_type is contract.RESULT_TYPE


def test_every_update_is_in_the_contract_with_its_types() -> None:
    assert set(DEFINITION.updates) == {update.name for update in contract.UPDATES}
    for update in contract.UPDATES:
        args, result = _signature(DEFINITION.updates[update.name].fn)
        assert (args, result) == (update.arg_types, update.result_type), update.name


def test_every_query_is_in_the_contract_with_its_result() -> None:
    assert set(DEFINITION.queries) == {query.name for query in contract.QUERIES}
    for query in contract.QUERIES:
        args, result = _signature(DEFINITION.queries[query.name].fn)
        assert (args, result) == ((), query.result_type), query.name


def test_every_signal_is_in_the_contract_with_its_arguments() -> None:
    assert set(DEFINITION.signals) == {signal.name for signal in contract.SIGNALS}
    for signal in contract.SIGNALS:
        args, result = _signature(DEFINITION.signals[signal.name].fn)
        assert (args, result) == (signal.arg_types, type(None)), signal.name
