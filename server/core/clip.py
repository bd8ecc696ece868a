"""Cutting text a caller controls down to a size that is safe to keep or to send back.

A caller can put megabytes in any string field. Whatever of it reaches an
error detail, a span attribute or a log line is cut here first, with a marker
saying how much was left out, so that a reader can tell it was cut.
"""

from __future__ import annotations

# Enough for any identifier the platform makes or accepts (order ids,
# request ids and customer ids are at most 128 characters).
DEFAULT_LIMIT = 128
_MARKER = "...[+{} chars]"


def clip(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """`text` if its UTF-8 takes at most `limit` bytes; else its start and a marker, within them.

    Bytes, not characters: what is bounded is what is stored and sent, and a
    character takes up to four. `limit` should leave room for the marker
    (some 20 bytes).
    """
    if len(text) * 4 <= limit:  # the common case: short enough whatever it holds
        return text
    if len(text) <= limit and len(text.encode()) <= limit:
        return text
    room = max(limit - len(_MARKER.format(len(text))), 0)
    # Cut by bytes; a character split in two is dropped whole.
    kept = text[:room].encode()[:room].decode(errors="ignore")
    return kept + _MARKER.format(len(text) - len(kept))
