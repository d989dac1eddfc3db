"""Monotone (isotonic) maps from a scorer's outputs onto a reference scale, per language.

scikit-learn's IsotonicRegression (pool-adjacent-violators) fits the map; it is stored as its
breakpoints (``x`` -> ``y``, linear in between, clipped outside), so applying it needs only
numpy. Cross-validated figures (k folds, out-of-fold predictions pooled) say what the map buys:
Spearman with the reference, mean absolute error on the reference scale, and ECE when the
reference is a probability. A monotone map cannot change AUROC except through ties.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import KFold

from xdetox.metrics.agreement import ece, spearman
from xdetox.metrics.bootstrap import stable_seed

FOLDS = 5


def fit_isotonic(scores: np.ndarray, reference: np.ndarray) -> dict[str, list[float]]:
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(scores, reference)
    return {"x": [float(v) for v in iso.X_thresholds_], "y": [float(v) for v in iso.y_thresholds_]}


def apply_map(m: dict[str, list[float]], scores: np.ndarray) -> np.ndarray:
    return np.interp(np.asarray(scores, dtype=float), m["x"], m["y"])


def _figures(pred: np.ndarray, ref: np.ndarray, threshold: float) -> dict[str, float | None]:
    prob_ref = bool(np.all((ref >= 0) & (ref <= 1)) and np.all((pred >= 0) & (pred <= 1)))
    rho = float(spearman(pred, ref))
    return {"spearman": rho if np.isfinite(rho) else None,
            "mae": float(np.mean(np.abs(pred - ref))),
            "ece": float(ece(pred, ref >= threshold)) if prob_ref else None}


def fit_calibration(scores: list[float | None], reference: list[float], threshold: float,
                    language: str, folds: int = FOLDS) -> dict[str, Any]:
    """The map for one language plus cross-validated before/after figures; missing scores are left out."""
    pairs = [(s, r) for s, r in zip(scores, reference, strict=True) if s is not None]
    if len(pairs) < 2 * folds:
        return {"n": len(pairs), "map": None, "reason": f"fewer than {2 * folds} scored texts"}
    s = np.array([p[0] for p in pairs], dtype=float)
    r = np.array([p[1] for p in pairs], dtype=float)
    oof = np.empty_like(r)
    for train, test in KFold(folds, shuffle=True, random_state=stable_seed("calibration", language) % 2**31).split(s):
        oof[test] = apply_map(fit_isotonic(s[train], r[train]), s[test])
    return {"n": len(pairs), "map": fit_isotonic(s, r), "cv_folds": folds,
            "before": _figures(s, r, threshold), "after": _figures(oof, r, threshold)}


def map_digest(languages: dict[str, Any]) -> str:
    """sha256 of the maps themselves (canonical JSON), the scale's name in every row and report."""
    maps = {lang: v["map"] for lang, v in sorted(languages.items()) if v.get("map")}
    return hashlib.sha256(json.dumps(maps, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
