"""Shared pieces of the file-reader fuzz tests (issue 16: "nothing lost, nothing silently wrong").

Every reader is fuzzed the same way: a small valid file written by our own writer, then random
bytes, the valid file with bytes flipped, cut, inserted or deleted, and (for structured formats)
the valid structure with fields of the wrong type, shape or value. The property: the reader
returns a result that passes a sanity check, or raises one of the error types documented for it
(``docs/reliability.md``, "Fuzzed readers") with a one-line message naming the file; any other
exception fails the test.

:func:`fuzz` makes two tests of one property: the default one (few examples, derandomized, so
the default suite stays fast and reproducible) and a ``slow``-marked one with :data:`SLOW_FACTOR`
times the examples, for CI (``pytest -m slow``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# our messages never suggest turning a safety off (issue 16, item 12)
UNSAFE_HINT = r"allow_pickle=True|weights_only=False|unsafely|you trust|trusted source"
SLOW_FACTOR = 10  # examples of the slow variant, per example of the default one
COMMON = dict(
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure reproduces
    database=None,  # nothing written to .hypothesis/
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int, **strategies: st.SearchStrategy) -> Callable[[Callable], tuple]:
    """``test_x, test_x_slow = fuzz(n, a=st...)(check)``: ``check(a=...)`` under hypothesis,
    ``n`` examples by default and ``n * SLOW_FACTOR`` in the ``slow`` variant."""

    def make(check: Callable) -> tuple[Callable, Callable]:
        fast = settings(max_examples=examples, **COMMON)(given(**strategies)(check))
        slow = settings(max_examples=examples * SLOW_FACTOR, **COMMON)(given(**strategies)(check))
        return fast, pytest.mark.slow(slow)

    return make


def expect(
    call: Callable[[], Any], errors: tuple[type[BaseException], ...], path: str | Path
) -> Any:
    """``call()``'s result, or ``None`` when it raised one of ``errors`` with a one-line message
    that names ``path``. Any other exception propagates (the fuzz test fails on it)."""
    try:
        return call()
    except errors as err:
        message = str(err)
        assert "\n" not in message.strip(), f"message is not one line: {message!r}"
        assert str(path) in message, f"message does not name {path}: {message!r}"
        assert not re.search(UNSAFE_HINT, message), f"message suggests the unsafe: {message!r}"
        return None


# ------------------------------------------------------------------------------- byte mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_ops: int = 4) -> bytes:
    """``data`` after 1..``max_ops`` random edits: bit flips, byte sets, truncation, insertion,
    deletion, duplication of a span."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(("flip", "set", "truncate", "insert", "delete", "repeat")))
        at = draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and buf:
            buf[at] = draw(st.sampled_from((0, 0xFF, 0x7F, 0x80, ord('"'), ord(","), ord("\n"))))
        elif op == "truncate":
            del buf[at:]
        elif op == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del buf[at : at + draw(st.integers(1, 64))]
        elif op == "repeat":
            end = min(len(buf), at + draw(st.integers(1, 64)))
            buf[at:at] = buf[at:end]
    return bytes(buf)


def random_or_mutated(valid: bytes, max_random: int = 512) -> st.SearchStrategy[bytes]:
    """Random bytes (empty included) or a mutation of ``valid``."""
    return st.one_of(st.binary(max_size=max_random), mutated(valid))


# A JSON value of any type: what a hostile file can put where we expect a number or a list.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
