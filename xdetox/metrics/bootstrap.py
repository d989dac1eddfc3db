"""Percentile bootstrap intervals that resample prompts, not samples.

A prompt's samples are correlated (same prompt, same model), so the unit of resampling is the
prompt: each resample draws P prompts with replacement and recomputes the statistic from their
per-prompt arrays. Vectorised: one ``(B, P)`` index matrix per chunk, the statistic evaluated on
all resamples at once. Seeded, so a report is reproducible; the seed is derived from the prompt
set and language, so base and tuned arms scored on the same prompts get the same resamples
(a paired bootstrap for their difference).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping

import numpy as np

#: cap on B*P index entries held at once (8 MB of int64): memory stays bounded however many prompts
_MAX_CELLS = 1_000_000


def stable_seed(*parts: object) -> int:
    """A seed that is the same in every process and Python version (unlike ``hash``)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8"))


def resample_statistics(
    stats: Mapping[str, tuple[Callable[..., np.ndarray], tuple[np.ndarray, ...]]],
    n_resamples: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Several statistics on the same ``n_resamples`` prompt resamples: name -> shape ``(n_resamples,)``.

    Each entry is ``(fn, per-prompt arrays)``; all arrays have the same length P and ``fn``
    reduces their last axis. One index matrix per chunk serves every statistic (drawing the
    indices is the costly part), and the same seed gives the same resamples in every call.
    """
    lengths = {len(c) for _, cols in stats.values() for c in cols}
    if len(lengths) > 1:
        raise ValueError(f"per-prompt arrays differ in length: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    if n == 0 or n_resamples <= 0:
        return {name: np.empty(0) for name in stats}
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // n)
    out = {name: np.empty(n_resamples) for name in stats}
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for name, (fn, cols) in stats.items():
            out[name][start:stop] = fn(*(np.asarray(c)[idx] for c in cols))
    return out


def resample_statistic(
    fn: Callable[..., np.ndarray],
    arrays: Mapping[str, np.ndarray] | tuple[np.ndarray, ...],
    n_resamples: int,
    seed: int,
) -> np.ndarray:
    """One statistic on ``n_resamples`` prompt resamples: shape ``(n_resamples,)`` (empty input: empty)."""
    cols = tuple(arrays.values()) if isinstance(arrays, Mapping) else tuple(arrays)
    return resample_statistics({"s": (fn, cols)}, n_resamples, seed)["s"]


def percentile_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float] | None:
    """The central ``confidence`` percentile interval of bootstrap values (NaNs ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(v, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(
    fn: Callable[..., np.ndarray],
    arrays: Mapping[str, np.ndarray] | tuple[np.ndarray, ...],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile interval of ``fn`` over prompt resamples; ``None`` when there is nothing to resample."""
    return percentile_interval(resample_statistic(fn, arrays, n_resamples, seed), confidence)
