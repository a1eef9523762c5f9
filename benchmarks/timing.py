"""Interleaved wall-clock timing shared by the benchmark scripts (imported as ``timing``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_median_s(
    fns: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, float]:
    """Median wall time of each callable in s; the callables take turns (``warmup`` untimed
    rounds, then ``repeats`` timed ones), so that load from other processes on a shared machine
    hits all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def interleaved_median_ms(
    fns: dict[str, Callable[[], object]], warmup: int, repeats: int
) -> dict[str, float]:
    """:func:`interleaved_median_s` in ms."""
    return {name: 1e3 * s for name, s in interleaved_median_s(fns, warmup, repeats).items()}
