"""How two scorers agree on the same texts, per language: before switching scorers, see where they part.

For the texts both scored: Spearman's rho between their numbers (rank-based, so a probability
scorer and a hit-count scorer compare fine), and the share of texts on which they disagree about
toxic vs not. A scorer calls a text toxic when its probability is >= the threshold (the metrics'
threshold, 0.5) or, for hit counts, when it has at least one hit. Each figure has a 95 %
percentile bootstrap interval over texts (seeded from the names given, so reruns agree).
A text one of them could not score is left out and counted, never read as 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xdetox.metrics.aggregate import StreamingAggregator
from xdetox.metrics.agreement import spearman
from xdetox.metrics.bootstrap import percentile_interval, resample_statistics, stable_seed


def toxic_calls(values: np.ndarray, score_kind: str, threshold: float) -> np.ndarray:
    """Whether each score says toxic: probability >= threshold, or at least one hit."""
    return values >= threshold if score_kind == "probability" else values > 0


def _share_differ(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.not_equal(a, b).mean(axis=-1)


def pair_agreement(
    a: list[float | None], b: list[float | None], kind_a: str, kind_b: str, threshold: float,
    n_resamples: int = 1000, confidence: float = 0.95, seed_parts: tuple[object, ...] = (),
) -> dict[str, Any]:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scores against {len(b)}")
    both = [i for i in range(len(a)) if a[i] is not None and b[i] is not None]
    va = np.array([a[i] for i in both], dtype=float)
    vb = np.array([b[i] for i in both], dtype=float)
    ta, tb = toxic_calls(va, kind_a, threshold), toxic_calls(vb, kind_b, threshold)
    out: dict[str, Any] = {
        "n": len(a), "both_scored": len(both),
        "missing_a": sum(x is None for x in a), "missing_b": sum(x is None for x in b),
        "toxic_a": int(ta.sum()), "toxic_b": int(tb.sum()),
    }
    if not both:
        return {**out, "spearman": None, "spearman_ci": None, "disagree_share": None, "disagree_share_ci": None}
    stats = {"spearman": (spearman, (va, vb)), "disagree_share": (_share_differ, (ta, tb))}
    boot = resample_statistics(stats, n_resamples, stable_seed("scorer-agreement", *seed_parts))
    for name, (fn, cols) in stats.items():
        value = float(fn(*cols))
        out[name] = value if np.isfinite(value) else None
        ci = percentile_interval(boot[name], confidence) if len(boot[name]) else None
        out[f"{name}_ci"] = [float(ci[0]), float(ci[1])] if ci else None
    return out


class CompareScorers:
    """Fed every ScoreRow of one arm: per compare scorer, a StreamingAggregator of its own toxicity
    metrics (the same definitions as the primary scorer's), and per language the paired numbers
    of the primary scorer and each compare scorer, for ``pair_agreement``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.aggs: list[StreamingAggregator] = []
        self.scorers: list[dict[str, Any]] = []
        self.primary: dict[str, Any] | None = None
        #: language -> [primary values, compare scorer 0 values, ...]
        self.values: dict[str, list[list[float | None]]] = {}

    def add(self, row: Any, key: tuple[str, str, str]) -> None:
        others = row.other_scores or []
        if self.primary is None:
            self.primary = {"scorer_id": row.scorer_id, "scorer_version": row.scorer_version,
                            "score_kind": row.score_kind, "scale": row.scale}
            for o in others:
                self.aggs.append(StreamingAggregator(threshold=self.threshold, diversity=False))
                self.scorers.append({"scorer_id": o.scorer_id, "scorer_version": o.scorer_version,
                                     "score_kind": o.score_kind, "scale": o.scale})
        if len(others) != len(self.scorers):
            raise ValueError(f"row {row.prompt_id}/{row.sample_index} ({row.language}) has {len(others)} other "
                             f"scores, earlier rows of this arm {len(self.scorers)}: score shards of different specs?")
        cols = self.values.setdefault(row.language, [[] for _ in range(len(others) + 1)])
        cols[0].append(row.toxicity if row.score_kind == "probability" else
                       (None if row.hits is None else float(row.hits)))
        for j, o in enumerate(others):
            self.aggs[j].add((*key, row.language), str(row.prompt_id), o.score_kind, toxicity=o.toxicity,
                             hits=o.hits, scorer=(o.scorer_id, o.scorer_version), score_error=o.score_error)
            cols[j + 1].append(o.value)

    def agreement(self, n_resamples: int, confidence: float, seed_parts: tuple[object, ...]) -> list[dict[str, Any]]:
        """Per compare scorer: its agreement with the primary scorer, per language."""
        if self.primary is None:
            return []
        out = []
        for j, sc in enumerate(self.scorers):
            per_language = {
                lang: pair_agreement(cols[0], cols[j + 1], self.primary["score_kind"], sc["score_kind"],
                                     self.threshold, n_resamples, confidence,
                                     (*seed_parts, lang, self.primary["scorer_id"], sc["scorer_id"]))
                for lang, cols in self.values.items()}
            out.append({"scorer_a": self.primary, "scorer_b": sc, "unit": "text", "threshold": self.threshold,
                        "per_language": per_language})
        return out
