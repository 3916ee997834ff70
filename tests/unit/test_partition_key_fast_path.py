"""The fast path of escape_partition_key (no character to escape) changes no result."""

from __future__ import annotations

import random

from durable_azstorage.codec.partitioning import escape_partition_key

_ESCAPES = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}


def _reference(key: str) -> str:
    out = []
    for ch in key:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code <= 0x1F or 0x7F <= code <= 0x9F:
            out.append("^" + chr(0xC0 + code))
        else:
            out.append(ch)
    return "".join(out)


def test_same_result_as_the_character_loop() -> None:
    rng = random.Random(16)
    alphabet = [chr(c) for c in range(0, 0x200)] + ["é", "\u2028", "😀", "@", "'"]
    for _ in range(5000):
        key = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert escape_partition_key(key) == _reference(key)
    assert escape_partition_key("0123abcdef") == "0123abcdef"
