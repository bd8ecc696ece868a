"""SQL in traces: every statement counted on its call's span, the slow ones spans of their own.

A span per statement made half of an order's spans: twenty statements an
order, each span more than doubling the Python side of its query (90 to 180
us on top of about 90, measured alone), 2% to 4% of the platform's CPU per
order on a slow host (docs/performance.md, "Statements counted, slow ones
spans"). Most statements take a millisecond and say nothing a trace needs;
the slow one is what a trace is read for.

So, in a sampled trace:

* every statement adds to the span of the call that ran it (the gRPC server
  span, the worker's `RunActivity` span): `sql.statements`, how many it ran,
  and `sql.statements_ms`, how long they took in all;
* a statement that took `TRACE_SQL_MIN_MS` or longer, or failed, also becomes
  a span of its own under that call, as OpenTelemetry's asyncpg
  instrumentation makes it (operation name, `db.*` attributes, the
  statement's text, never its parameters), its times those the statement
  really took. `TRACE_SQL_MIN_MS=0` makes a span of every statement.

Outside a sampled trace (a call not sampled, work outside any call: the
LISTEN connection, migrations) a statement goes straight to asyncpg.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor, _hydrate_span_from_args
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

_log = logging.getLogger(__name__)

STATEMENTS = "sql.statements"
STATEMENTS_MS = "sql.statements_ms"


class StatementTracing(AsyncPGInstrumentor):  # type: ignore[misc]
    """asyncpg's instrumentation, with statements counted and only the slow ones spans.

    A singleton, as every instrumentor: `instrument(slow_ms=...)` once per
    process (`instrument_statements`).
    """

    _slow_ns = 0

    def _instrument(self, **kwargs: Any) -> None:
        self._slow_ns = int(kwargs.pop("slow_ms", 0.0) * 1_000_000)
        super()._instrument(**kwargs)

    async def _do_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return await self._timed(func, args, kwargs, instance, args[0] if args else "")

    async def _do_cursor_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return await self._timed(
            func, args, kwargs, instance._connection, instance._query or "", prefix="CURSOR: "
        )

    async def _do_prepared_execute(self, func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return await self._timed(func, args, kwargs, instance._connection, instance._query or "")

    async def _timed(
        self,
        func: Any,
        args: Any,
        kwargs: Any,
        connection: Any,
        query: str,
        *,
        prefix: str = "",
    ) -> Any:
        call = trace.get_current_span()
        if not call.is_recording() or not is_instrumentation_enabled():
            return await func(*args, **kwargs)
        failure: Exception | None = None
        start = time.time_ns()
        try:
            return await func(*args, **kwargs)
        except StopAsyncIteration:  # a cursor's end, not a failure
            raise
        except Exception as error:
            failure = error
            raise
        finally:
            end = time.time_ns()
            try:
                _count(call, end - start)
                if failure is not None or end - start >= self._slow_ns:
                    self._statement_span(connection, query, prefix, start, end, failure)
            except Exception:
                # The span is made after the statement, in its `finally`: a
                # fault here (the instrumentation's helpers are not its public
                # API) must not replace what the statement returned or raised.
                _tracing_failed()

    def _statement_span(
        self,
        connection: Any,
        query: str,
        prefix: str,
        start: int,
        end: int,
        failure: Exception | None,
    ) -> None:
        """The span the instrumentation would have made, under the current call, after the fact."""
        attributes = _hydrate_span_from_args(
            connection, query, None, semconv_opt_in_mode=self._semconv_opt_in_mode
        )
        tracer = cast(trace.Tracer, self._tracer)  # set by `instrument`
        span = tracer.start_span(
            prefix + _operation(query, connection),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", type(failure).__qualname__)
        span.end(end_time=end)


_reported = False


def _tracing_failed() -> None:
    """Logs, once per process, that a statement could not be traced."""
    global _reported
    if not _reported:
        _reported = True
        _log.exception("tracing a SQL statement failed; statements go on untraced where it fails")


def _count(call: trace.Span, elapsed_ns: int) -> None:
    """Adds a statement and its time to the call's span."""
    counted = getattr(call, "attributes", None) or {}
    total_ms = float(counted.get(STATEMENTS_MS, 0.0)) + elapsed_ns / 1e6
    call.set_attributes(
        {STATEMENTS: int(counted.get(STATEMENTS, 0)) + 1, STATEMENTS_MS: round(total_ms, 3)}
    )


def _operation(query: str, connection: Any) -> str:
    """The span's name: the statement's first word, as the instrumentation names it."""
    text = AsyncPGInstrumentor._leading_comment_remover.sub("", query).lstrip()
    if not text:
        return str(getattr(getattr(connection, "_params", None), "database", "postgresql"))
    return text.split(None, 1)[0]


def instrument_statements(slow_ms: float) -> None:
    """Traces this process's SQL as above (once; later calls change nothing)."""
    instrumentor = StatementTracing()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(slow_ms=slow_ms)
