"""Sliding windows' counts in memory, for the `limits` library's sliding-window-counter strategy.

Admission (admission.py) asks `SlidingWindowCounterRateLimiter` whether a
customer, and the platform, may place one more order, and counts it if so.
The strategy reads and writes each rate's counts through a storage. The
library's `MemoryStorage` is made for threaded programs: each count starts a
timer thread, unless one is running, which 10 ms later walks every key for
expired ones. At the front door, where orders arrive more than 10 ms apart
unless it is busy, that was a thread, and about half a millisecond of CPU,
for nearly every order admitted (docs/performance.md, "An eighth host").

`WindowCounts` is that storage with its sliding windows kept for one event
loop: nothing runs between a read and the write that follows it, so they
need no lock; a key's counts move on when the window they belong to has
passed, and keys whose windows have all passed are dropped in one walk each
time the number of keys has doubled, so each key costs a constant on
average. The rest of `MemoryStorage` (fixed windows, moving windows) is as
the library has it.
"""

from __future__ import annotations

import math
import time

from limits.storage import MemoryStorage

# Keys held before the first walk for expired ones.
_FIRST_SWEEP_AT = 1024


class WindowCounts(MemoryStorage):
    """MemoryStorage whose sliding windows are counted without a timer thread."""

    def __init__(self) -> None:
        super().__init__()
        # key -> (its latest window: time // expiry, the count in it, the count
        # in the window before, expiry)
        self._windows: dict[str, tuple[int, int, int, int]] = {}
        self._sweep_at = _FIRST_SWEEP_AT

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """(previous count, seconds the previous window still weighs, current count,
        seconds until the current count is forgotten), as the library's storages say."""
        now = time.time()
        previous, current = self._counts(key, expiry, now)
        return (
            previous,
            _previous_weight_seconds(now, expiry) if previous else 0.0,
            current,
            (1 - (now / expiry) % 1) * expiry + expiry,
        )

    def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        """Counts `amount` more hits in the current window if the weighted count allows it."""
        if amount > limit:
            return False
        now = time.time()
        previous, current = self._counts(key, expiry, now)
        weighted = previous * _previous_weight_seconds(now, expiry) / expiry + current
        if math.floor(weighted) + amount > limit:
            return False
        if key not in self._windows and len(self._windows) >= self._sweep_at:
            self._sweep(now)
        self._windows[key] = (int(now / expiry), current + amount, previous, expiry)
        return True

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        self._windows.pop(key, None)

    def reset(self) -> int | None:
        cleared = len(self._windows)
        self._windows.clear()
        return cleared + (super().reset() or 0)

    def _counts(self, key: str, expiry: int, now: float) -> tuple[int, int]:
        """The key's counts in the window before this one and in this one."""
        held = self._windows.get(key)
        if held is None:
            return 0, 0
        window, count, before, _ = held
        this_window = int(now / expiry)
        if window == this_window:
            return before, count
        if window == this_window - 1:
            return count, 0
        return 0, 0

    def _sweep(self, now: float) -> None:
        """Drops the keys whose latest window is over and no longer weighs on the next."""
        self._windows = {
            key: held for key, held in self._windows.items() if held[0] >= int(now / held[3]) - 1
        }
        self._sweep_at = max(_FIRST_SWEEP_AT, 2 * len(self._windows))

    @property
    def keys_held(self) -> int:
        return len(self._windows)


def _previous_weight_seconds(now: float, expiry: int) -> float:
    """How much of the previous window the sliding window still covers, in seconds."""
    return (1 - ((now - expiry) / expiry) % 1) * expiry
