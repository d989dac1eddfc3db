"""Median conditional perplexity per language, with its quartiles, as paper 1 reports it.

Paper 1 (BatsResearch/cross-lingual-detox, xg/eval/metric_perplexity.py, after goodtriever) keeps
only perplexities below 1e4 ("for sanity"), then reports per language the median with Q1 and Q3,
numpy's percentile with midpoint interpolation; its table averages the medians over languages.
Here too: values >= ``PPL_LIMIT`` are left out and counted (``over_limit``), never clipped.
Perplexities are computed per row by the score step; here they are only aggregated, ``None``
(not computed, e.g. an empty continuation, or failed) ignored.

The median streams: values are kept exactly up to ``exact_cap`` per language, then the median
comes from a fine log-spaced histogram (bin width 0.1% in log space: relative error < 0.1%), so
memory stays bounded however many rows there are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

_LOG_LO, _LOG_HI, _BINS = 0.0, math.log(1e9), 20_723  # ~0.1% wide bins from ppl 1 to 1e9
#: paper 1 keeps a perplexity only when it is below this ("if ppl < 1e4:  # for sanity")
PPL_LIMIT = 1e4


class StreamingMedian:
    def __init__(self, exact_cap: int = 100_000, limit: float | None = PPL_LIMIT) -> None:
        self.exact_cap = exact_cap
        self.limit = limit
        self.values: list[float] | None = []
        self.hist = np.zeros(_BINS + 2, dtype=np.int64)  # + underflow and overflow bins
        self.n = 0
        self.over_limit = 0

    def add(self, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        if self.limit is not None and value >= self.limit:
            self.over_limit += 1
            return
        self.n += 1
        if self.values is not None:
            self.values.append(value)
            if len(self.values) > self.exact_cap:
                for v in self.values:
                    self._bin(v)
                self.values = None
        else:
            self._bin(value)

    def _bin(self, value: float) -> None:
        lv = math.log(value) if value > 0 else -math.inf
        if lv < _LOG_LO:
            self.hist[0] += 1
        elif lv >= _LOG_HI:
            self.hist[-1] += 1
        else:
            self.hist[1 + int((lv - _LOG_LO) / (_LOG_HI - _LOG_LO) * _BINS)] += 1

    def median(self) -> float | None:
        return self.quantile(50)

    def quantile(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100), midpoint interpolation as paper 1 (exact up to
        ``exact_cap`` values; beyond, the bin centre of the log-spaced histogram)."""
        if self.n == 0:
            return None
        if self.values is not None:
            return float(np.percentile(self.values, q, method="midpoint"))
        cum = np.cumsum(self.hist)
        b = int(np.searchsorted(cum, self.n * q / 100.0))
        if b == 0:
            return 1.0
        if b == len(self.hist) - 1:
            return math.exp(_LOG_HI)
        width = (_LOG_HI - _LOG_LO) / _BINS
        return float(math.exp(_LOG_LO + (b - 0.5) * width))  # bin centre


def median_perplexity(values: Iterable[float | None], limit: float | None = PPL_LIMIT) -> float | None:
    """Median of the non-missing perplexities below ``limit``; ``None`` when there are none."""
    m = StreamingMedian(limit=limit)
    for v in values:
        m.add(v)
    return m.median()
