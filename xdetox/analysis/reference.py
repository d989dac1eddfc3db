"""Paper 1's published toxic-neuron results for mGPT, for comparing a real run against them.

Files (BSD-3-Clause, from BatsResearch/cross-lingual-detox ``assets/``, vendored under
``xdetox/data/paper-reference/``; ``XDETOX_PAPER_REFERENCE`` points elsewhere):

- ``actual_sources_of_toxicity.json``: the 36 (layer, index) neurons whose value vectors are most
  cosine-similar to the English toxicity probe;
- ``neuron-activations.json``: their mean activation over greedy continuations of RTP-LX prompts,
  per language, before (``pre_dpo``) and after (``post_dpo``) DPO;
- ``english-probe.weight.json``: the probe (``nn.Linear(2048, 1, bias=False)``) weight.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "data" / "paper-reference"
NEURONS_FILE = "actual_sources_of_toxicity.json"
ACTIVATIONS_FILE = "neuron-activations.json"
PROBE_FILE = "english-probe.weight.json"

BUNDLED_PROBE = "bundled:mgpt-probe"
BUNDLED_NEURONS = "bundled:mgpt-toxic-neurons"


class ReferenceError(ValueError):
    pass


def reference_dir(root: str | Path | None = None) -> Path:
    """``root``, else $XDETOX_PAPER_REFERENCE, else the vendored folder in the package."""
    path = Path(root) if root is not None else Path(os.environ.get("XDETOX_PAPER_REFERENCE", PACKAGE_DIR))
    if not path.is_dir():
        raise ReferenceError(f"paper reference folder {path} does not exist (vendor paper-reference into "
                             f"{PACKAGE_DIR} or set XDETOX_PAPER_REFERENCE)")
    return path


def _read(root: str | Path | None, name: str) -> Any:
    path = reference_dir(root) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise ReferenceError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def mgpt_toxic_neurons(root: str | Path | None = None) -> list[tuple[int, int]]:
    data = _read(root, NEURONS_FILE)
    path = reference_dir(root) / NEURONS_FILE
    if not isinstance(data, list):
        raise ReferenceError(f"{path}: expected a list of [layer, index] pairs")
    out = []
    for i, pair in enumerate(data):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) for x in pair)):
            raise ReferenceError(f"{path}: item {i} must be [layer, index], got {pair!r}")
        out.append((pair[0], pair[1]))
    return out


def mgpt_activations(root: str | Path | None = None) -> dict[str, dict[str, float]]:
    """{"pre_dpo": {lang: mean activation}, "post_dpo": {...}}."""
    data = _read(root, ACTIVATIONS_FILE)
    path = reference_dir(root) / ACTIVATIONS_FILE
    for stage in ("pre_dpo", "post_dpo"):
        if not isinstance(data.get(stage), dict):
            raise ReferenceError(f"{path}: field {stage!r} must map languages to numbers")
    return {stage: {k: float(v) for k, v in data[stage].items()} for stage in ("pre_dpo", "post_dpo")}


def load_probe_json(path: str | Path) -> list[float]:
    """A probe weight saved as ``{"weight": [...]}`` or ``{"weight": [[...]]}`` (shape [1, hidden])."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceError(f"probe.source: {p} does not exist") from None
    except json.JSONDecodeError as e:
        raise ReferenceError(f"{p}:{e.lineno}: not valid JSON ({e.msg})") from None
    w = data.get("weight") if isinstance(data, dict) else None
    if isinstance(w, list) and len(w) == 1 and isinstance(w[0], list):
        w = w[0]
    if not (isinstance(w, list) and w and all(isinstance(x, int | float) for x in w)):
        raise ReferenceError(f"{p}: field 'weight' must be a non-empty list of numbers")
    return [float(x) for x in w]


def mgpt_probe(root: str | Path | None = None) -> list[float]:
    return load_probe_json(reference_dir(root) / PROBE_FILE)


def _spearman(a: list[float], b: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3:
        return None
    rho = spearmanr(a, b).statistic
    return None if rho is None or math.isnan(float(rho)) else float(rho)


def compare_with_mgpt(before: Mapping[str, float], after: Mapping[str, float] | None = None,
                      root: str | Path | None = None) -> dict[str, Any]:
    """Spearman rank correlation, across the languages both have, between a run's per-language mean
    activations of its toxic neurons and mGPT's published ones: before tuning, after, and the drop.

    A real-model check: on mGPT with the reference probe, the languages should rank alike.
    """
    ref = mgpt_activations(root)
    langs = sorted(set(before) & set(ref["pre_dpo"]))
    out: dict[str, Any] = {"languages": langs,
                           "spearman_before": _spearman([before[x] for x in langs], [ref["pre_dpo"][x] for x in langs])}
    if after is not None:
        both = [x for x in langs if x in after]
        out["spearman_after"] = _spearman([after[x] for x in both], [ref["post_dpo"][x] for x in both])
        out["spearman_drop"] = _spearman([before[x] - after[x] for x in both],
                                         [ref["pre_dpo"][x] - ref["post_dpo"][x] for x in both])
    out["reference"] = {x: {"pre_dpo": ref["pre_dpo"][x], "post_dpo": ref["post_dpo"][x]} for x in langs}
    return out


def neuron_overlap(found: list[tuple[int, int]], root: str | Path | None = None) -> dict[str, Any]:
    """How many of mGPT's 36 published toxic neurons a run's top-k list recovers."""
    ref = set(mgpt_toxic_neurons(root))
    hit = sorted(set(found) & ref)
    return {"reference_count": len(ref), "found_count": len(found), "overlap": len(hit), "shared": hit}
