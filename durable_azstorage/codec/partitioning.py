"""Instance-to-partition hashing and table key encoding, bit-exact with DTAS."""

from __future__ import annotations

import re
import struct
import uuid

__all__ = [
    "SENTINEL_ROW_KEY",
    "app_lease_id",
    "escape_partition_key",
    "fnv1a32",
    "history_row_key",
    "parse_history_row_key",
    "partition_index",
    "unescape_partition_key",
]

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
SENTINEL_ROW_KEY = "sentinel"
_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_UNESCAPES = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-8 bytes (AS/Fnv1aHashHelper.cs)."""
    h = _FNV_OFFSET
    for b in _utf8_like_dotnet(text):
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _utf8_like_dotnet(text: str) -> bytes:
    """UTF-8 as .NET's encoder makes it: lone surrogates become U+FFFD instead of raising."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return repaired.encode("utf-8")


def partition_index(instance_id: str, partition_count: int) -> int:
    return fnv1a32(instance_id) % partition_count


def app_lease_id(app_name: str) -> str:
    """The app-lease Guid: FNV-1a of the app name, little-endian, zero padded to 16 bytes."""
    raw = struct.pack("<I", fnv1a32(app_name)) + b"\x00" * 12
    return str(uuid.UUID(bytes_le=raw))


_NEEDS_ESCAPE = re.compile("[\\^/\\\\#?\x00-\x1f\x7f-\x9f]")


def escape_partition_key(key: str) -> str:
    """KeySanitation.EscapePartitionKey; not idempotent, so escape raw ids exactly once."""
    if _NEEDS_ESCAPE.search(key) is None:
        return key  # the common case (hex ids, names): one C-level scan instead of a loop
    out: list[str] = []
    for ch in key:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append("^" + chr(0xC0 + code))
        else:
            out.append(ch)
    return "".join(out)


def unescape_partition_key(key: str) -> str:
    """Inverse of :func:`escape_partition_key`, tolerant of a trailing lone ``^``."""
    out: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch != "^" or i + 1 >= len(key):
            out.append(ch)
            i += 1
            continue
        nxt = key[i + 1]
        if nxt in _UNESCAPES:
            out.append(_UNESCAPES[nxt])
        else:
            code = ord(nxt)
            out.append(chr(code - 0xC0) if code >= 0xC0 else nxt)
        i += 2
    return "".join(out)


def history_row_key(sequence_number: int) -> str:
    """``long.ToString("X16")``: 16 upper-case hex digits."""
    if sequence_number < 0:
        raise ValueError(f"sequence number must be >= 0, got {sequence_number}")
    return f"{sequence_number:016X}"


def parse_history_row_key(row_key: str) -> int | None:
    """Sequence number of a history RowKey, or None for the sentinel or a foreign key."""
    if len(row_key) != 16:
        return None
    try:
        return int(row_key, 16)
    except ValueError:
        return None
