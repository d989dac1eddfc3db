"""Cross-lingual alignment of hidden states, and its correlation with detoxification transfer.

Paper 1's code (BatsResearch/cross-lingual-detox, xg/retrieval/) mean-pools every hidden state
(embedding output included) over real tokens for N parallel prompts in two languages and reports
the mean cosine of the aligned pairs, averaged over layers, calling it "retrieval accuracy". It is
a paired similarity, not retrieval. We report both:

- ``paired_cosine``: mean over i of cos(pivot_i, other_i) (what the paper's code reports);
- ``retrieval_accuracy``: share of pivot prompts i whose nearest neighbour (by cosine) among the
  other language's N prompts is its own translation i (true bilingual sentence retrieval).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


def paired_cosine(pivot: np.ndarray, other: np.ndarray) -> float:
    """Mean cosine similarity of row i of ``pivot`` with row i of ``other`` (shape (N, D) each)."""
    _check(pivot, other)
    return float(np.mean(np.sum(_unit(pivot) * _unit(other), axis=-1)))


def retrieval_accuracy(pivot: np.ndarray, other: np.ndarray) -> float:
    """Share of i whose nearest neighbour of ``pivot[i]`` among ``other``'s rows is ``other[i]``."""
    _check(pivot, other)
    sim = _unit(pivot) @ _unit(other).T
    return float(np.mean(np.argmax(sim, axis=1) == np.arange(len(pivot))))


def _check(pivot: np.ndarray, other: np.ndarray) -> None:
    if pivot.shape != other.shape or pivot.ndim != 2:
        raise ValueError(f"need two (N, D) arrays of the same shape, got {pivot.shape} and {other.shape}")
    if len(pivot) < 2:
        raise ValueError("need at least 2 parallel prompts")


def layer_scores(pivot_layers: np.ndarray, other_layers: np.ndarray) -> dict[str, Any]:
    """Per-layer paired cosine and retrieval accuracy for (L, N, D) arrays, plus their means over layers."""
    if pivot_layers.ndim != 3 or pivot_layers.shape != other_layers.shape:
        raise ValueError(f"need two (L, N, D) arrays of the same shape, got {pivot_layers.shape} and "
                         f"{other_layers.shape}")
    cos = [paired_cosine(p, o) for p, o in zip(pivot_layers, other_layers, strict=True)]
    acc = [retrieval_accuracy(p, o) for p, o in zip(pivot_layers, other_layers, strict=True)]
    return {
        "paired_cosine": cos,
        "retrieval_accuracy": acc,
        "paired_cosine_mean": float(np.mean(cos)),
        "retrieval_accuracy_mean": float(np.mean(acc)),
    }


def relative_change(before: float | None, after: float | None) -> float | None:
    """(after - before) / before; ``None`` when either is missing or before is 0."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before


def relative_reduction(before: float | None, after: float | None) -> float | None:
    """(before - after) / before: the share of toxicity removed (positive when tuning helped).

    Paper 1 correlates alignment with this reduction ("percent change" of EMT, positive for a
    language that was detoxified), which is why its r is positive (0.73 for mGPT): better aligned
    languages lose more of their toxicity. Correlating with (after - before) / before flips the sign.
    """
    change = relative_change(before, after)
    return None if change is None else -change


def alignment_correlation(
    alignment: Mapping[str, float | None], change: Mapping[str, float | None], min_languages: int = 3
) -> dict[str, Any]:
    """Pearson r (and two-sided p) across languages between alignment and detoxification
    (``change``: the relative reduction per language, as paper 1 defines it).

    Only languages with both values count. Fewer than ``min_languages`` of them, or a constant
    series, gives ``r = None`` with the reason.
    """
    from scipy.stats import pearsonr

    langs: Sequence[str] = sorted(
        lang for lang in alignment
        if alignment.get(lang) is not None and change.get(lang) is not None
        and math.isfinite(float(alignment[lang])) and math.isfinite(float(change[lang]))  # type: ignore[arg-type]
    )
    out: dict[str, Any] = {"r": None, "p_value": None, "n": len(langs), "languages": list(langs), "reason": None}
    if len(langs) < min_languages:
        out["reason"] = f"needs at least {min_languages} languages with both an alignment score and a change; got {len(langs)}"
        return out
    x = np.array([alignment[lang] for lang in langs], dtype=float)
    y = np.array([change[lang] for lang in langs], dtype=float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        out["reason"] = "one of the series is constant across languages: correlation undefined"
        return out
    res = pearsonr(x, y)
    out["r"] = float(res.statistic)
    out["p_value"] = float(res.pvalue)
    return out
