"""How well a scorer agrees with human (or reference) judgments in one language.

Pure arrays in, numbers out; no I/O. AUROC is the Mann-Whitney statistic on average ranks
(ties count one half, as scikit-learn's ``roc_auc_score`` does), written over the last axis so
that a whole ``(B, n)`` block of bootstrap resamples is scored at once; Spearman is the Pearson
correlation of average ranks (``scipy.stats.spearmanr``'s definition), also row-wise. A resample
in which one class is absent has no AUROC (NaN) and is left out of the interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from xdetox.metrics.bootstrap import resample_statistics, stable_seed

#: equal-width probability bins for the expected calibration error (the common choice; Guo et al. 2017)
ECE_BINS = 10


def auroc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for binary ``labels`` along the last axis; NaN where a class is absent."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    ranks = rankdata(scores, axis=-1)
    n_pos = labels.sum(axis=-1)
    n_neg = labels.shape[-1] - n_pos
    rank_sum = np.where(labels, ranks, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis; NaN where either side is constant."""
    ra = rankdata(np.asarray(a, dtype=float), axis=-1)
    rb = rankdata(np.asarray(b, dtype=float), axis=-1)
    ra = ra - ra.mean(axis=-1, keepdims=True)
    rb = rb - rb.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=-1) / np.sqrt((ra**2).sum(axis=-1) * (rb**2).sum(axis=-1))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> np.ndarray:
    """Expected calibration error along the last axis: sum over equal-width bins of
    (bin share) x |mean probability - share toxic|. The last bin includes 1.0."""
    probs = np.asarray(probs, dtype=float)
    labels = np.asarray(labels, dtype=float)
    which = np.minimum((probs * bins).astype(int), bins - 1)
    n = probs.shape[-1]
    total = np.zeros(probs.shape[:-1])
    for b in range(bins):
        inside = which == b
        gap = np.abs(np.where(inside, probs, 0.0).sum(axis=-1) - np.where(inside, labels, 0.0).sum(axis=-1))
        total = total + gap / n  # = count/n * |mean p - mean y| for the bin
    return total


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(ok, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def agreement(
    scores: list[float | None],
    reference: list[float],
    threshold: float,
    probability: bool,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed_parts: tuple[object, ...] = (),
) -> dict[str, Any]:
    """n, missing, toxic/non-toxic counts, AUROC, Spearman and (for probabilities) ECE, each
    with a percentile bootstrap interval over texts. Missing scores are left out and counted,
    never read as 0; toxic means ``reference >= threshold``."""
    return agreement_with_replicates(scores, reference, threshold, probability, n_resamples, level,
                                     seed_parts)[0]


def agreement_with_replicates(
    scores: list[float | None],
    reference: list[float],
    threshold: float,
    probability: bool,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed_parts: tuple[object, ...] = (),
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``agreement`` and its bootstrap replicates (name -> shape ``(n_resamples,)``), so that a
    statistic over languages (the median AUROC) gets its own interval from the same resamples."""
    if len(scores) != len(reference):
        raise ValueError(f"{len(scores)} scores for {len(reference)} reference values")
    keep = [i for i, s in enumerate(scores) if s is not None]
    s = np.array([scores[i] for i in keep], dtype=float)
    r = np.array([reference[i] for i in keep], dtype=float)
    y = r >= threshold
    out: dict[str, Any] = {
        "n": len(scores), "missing": len(scores) - len(keep),
        "toxic": int(y.sum()), "non_toxic": int((~y).sum()),
    }
    stats: dict[str, Any] = {"auroc": (auroc, (s, y)), "spearman": (spearman, (s, r))}
    if probability:
        stats["ece"] = (ece, (s, y))
    boot = resample_statistics(stats, n_resamples, stable_seed("agreement", *seed_parts))
    for name, (fn, cols) in stats.items():
        out[name] = _num(fn(*cols)) if len(keep) else None
        out[f"{name}_ci"] = _interval(boot[name], level) if len(keep) else None
    return out, boot


def median_over_languages(point: dict[str, float | None], replicates: dict[str, np.ndarray],
                          level: float = 0.95) -> dict[str, Any]:
    """Median of a per-language statistic (issue 16's target is the median AUROC over RTP-LX's 17
    languages) with a percentile bootstrap interval: each language's texts were resampled on
    their own, so replicate b's median is taken over every language's replicate b; a language
    without the statistic (one class absent) is left out and named."""
    have = sorted(lang for lang, v in point.items() if v is not None and np.isfinite(v))
    out: dict[str, Any] = {"languages": len(have), "left_out": sorted(set(point) - set(have))}
    if not have:
        return {**out, "median": None, "median_ci": None}
    reps = [replicates[lang] for lang in have if replicates.get(lang) is not None and replicates[lang].size]
    median_ci = None
    if len(reps) == len(have) and len({r.size for r in reps}) == 1:
        with np.errstate(invalid="ignore"):
            stacked = np.vstack(reps)
            # a replicate where some language has no AUROC (NaN) has no median over all of them
            meds = np.where(np.isfinite(stacked).all(axis=0), np.median(stacked, axis=0), np.nan)
        median_ci = _interval(meds, level)
    return {**out, "median": float(np.median([point[lang] for lang in have])), "median_ci": median_ci}
