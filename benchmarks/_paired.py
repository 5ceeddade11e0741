"""What the benchmarks say of a paired ratio: its median, a 90 % bootstrap interval of
that median, and whether a target is met by these rounds.

Each round measures both sides back to back, so a ratio per round cancels most of what
a shared, noisy machine does to both; the interval says whether the rounds decide."""

from __future__ import annotations

import random
import statistics

__all__ = ["median_interval", "verdict"]


def median_interval(values: list[float], resamples: int = 2000) -> tuple[float, float]:
    """A 90 % bootstrap interval of the median of ``values`` (percentile method, fixed
    seed: the same rounds give the same interval)."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples)
    )
    return medians[int(0.05 * resamples)], medians[int(0.95 * resamples) - 1]


def verdict(interval: tuple[float, float], target: float, *, at_least: bool = False) -> str:
    """The verdict on ``target``: "met" when the whole interval is at or below it (at or
    above it with ``at_least``, for a ratio that must reach the target), "not met" when it
    is all on the other side, "undecided" when it straddles it (more rounds may decide)."""
    low, high = interval
    if at_least:
        return "met" if low >= target else "not met" if high < target else "undecided"
    return "met" if high <= target else "not met" if low > target else "undecided"
