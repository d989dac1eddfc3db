"""Nightly reproduction check: a run's metrics against the distribution of k seeds' values.

Sampling is deterministic on one machine but not across CPU models or GPUs (FACTS: the same seed
gave a toxicity rate of 0.052 on one machine and 0.083 on another), so one run can never be held
to another run's numbers. The reference (``jobs/nightly-reference.json``) holds, for each figure,
its value in k >= 5 runs that differ only in their seed; a new run is one more draw.

The test, per noisy figure (a rate, distinct-n, a tuned − base change), is a two-sided t
prediction interval for one new observation:

    |x − mean| <= t(k−1, 1 − a/2) · sigma · sqrt(1 + 1/k)

with ``a = alpha / F`` (Bonferroni over the F noisy figures, so the family-wise false-alarm rate
of a whole check is at most ``alpha``, default 0.05), and ``sigma`` the larger of the seeds'
standard deviation, the runs' own bootstrap standard error (from their 95 % intervals over
prompts), and a binomial floor sqrt(p(1 − p)/n) for a rate over n samples (so that a figure that
was 0 in every seed does not get a zero-width interval). The half-width is the smallest shift
the check detects (with 50 % power). Deterministic figures (row, prompt and missing-score
counts) must match exactly: a scorer that drops half its scores changes them.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from scipy import stats

from xdetox.manifest import digest
from xdetox.store import NotFoundError, Store

METRICS_KEY = "results/metrics.json"
CHECK_JSON = "results/nightly-check.json"
CHECK_MD = "results/nightly-check.md"
REFERENCE_FORMAT = 2
MIN_SEEDS = 5
#: readable names of the metrics a nightly follows
METRIC_NAMES = {
    "lexicon_hit_rate": "lexicon hit rate", "toxicity_probability": "toxicity rate",
    "expected_max_toxicity": "expected max toxicity", "average_toxicity": "average toxicity",
    "dist2": "distinct-2", "language_consistency": "language consistency",
}
#: exact figures: counts that depend on the spec and data only, never on sampling
EXACT_COUNTS = ("prompts", "prompts_scored", "prompts_missing", "rows", "rows_scored", "rows_missing")
_Z975 = NormalDist().inv_cdf(0.975)


class ReferenceError(ValueError):
    """Reference values that cannot be made or used (mixed versions, too few seeds, bad file)."""


class Figure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="dotted path into metrics.json; list items by index")
    name: str = Field(description="readable, e.g. 'tuned/de toxicity rate'")
    kind: Literal["noisy", "exact"]
    values: list[float] = Field(min_length=1, description="one per seed, in the order of Reference.seeds")
    boot_se: float = Field(default=0.0, ge=0, description="mean bootstrap standard error of the runs")
    n: int = Field(default=0, ge=0, description="samples behind a rate (binomial floor); 0: no floor")


class Reference(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal[2] = REFERENCE_FORMAT
    spec: str
    spec_digest: str = Field(description="digest of the spec without its seed and store")
    xdetox_version: str
    source: str = Field(description="how the values were produced (command, date, machine, versions)")
    seeds: list[int] = Field(min_length=2)
    false_alarm_rate: float = Field(default=0.05, gt=0, lt=1, description="family-wise, over the noisy figures")
    figures: list[Figure] = Field(min_length=1)


class Outcome(BaseModel):
    name: str
    path: str
    kind: str
    reference: float = Field(description="mean of the reference seeds (exact: the value)")
    value: float | None
    tolerance: float = Field(description="half-width of the prediction interval: the smallest change detected")
    ok: bool
    reason: str = ""


# --------------------------------------------------------------------------- the test
def noisy_sigma(f: Figure) -> float:
    k = len(f.values)
    mean = sum(f.values) / k
    sd = math.sqrt(sum((v - mean) ** 2 for v in f.values) / (k - 1)) if k > 1 else 0.0
    floor = 0.0
    if f.n > 0:
        p = min(max(abs(mean), 1.0 / f.n), 0.5)
        floor = math.sqrt(p * (1 - p) / f.n)
    return max(sd, f.boot_se, floor)


def tolerance(f: Figure, alpha: float, n_noisy: int) -> float:
    """Half-width of the two-sided prediction interval for one new run (Bonferroni over n_noisy)."""
    if f.kind == "exact":
        return 0.0
    k = len(f.values)
    a = alpha / max(1, n_noisy)
    q = float(stats.t.ppf(1 - a / 2, df=max(1, k - 1)))
    return q * noisy_sigma(f) * math.sqrt(1 + 1 / k)


def lookup(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("."):
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                raise KeyError(path)
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise KeyError(path)
    return cur


def compare(metrics: dict[str, Any], ref: Reference) -> list[Outcome]:
    n_noisy = sum(f.kind == "noisy" for f in ref.figures)
    out: list[Outcome] = []
    for f in ref.figures:
        center = sum(f.values) / len(f.values)
        tol = tolerance(f, ref.false_alarm_rate, n_noisy)
        base = {"name": f.name, "path": f.path, "kind": f.kind, "reference": center, "tolerance": tol}
        try:
            got = lookup(metrics, f.path)
        except KeyError:
            out.append(Outcome(**base, value=None, ok=False, reason="missing"))
            continue
        if got is None or isinstance(got, bool) or not isinstance(got, int | float) or math.isnan(float(got)):
            # A missing score is missing, never 0: it fails the check rather than passing as a number.
            out.append(Outcome(**base, value=None, ok=False, reason=f"not a number ({got!r})"))
            continue
        diff = float(got) - center
        ok = abs(diff) <= tol + 1e-12
        why = "" if ok else (f"differs from the reference ({center:.6g})" if f.kind == "exact" else
                             f"{diff:+.4g} is beyond ±{tol:.4g} (seed and sampling noise)")
        out.append(Outcome(**base, value=float(got), ok=ok, reason=why))
    return out


# --------------------------------------------------------------------------- output
def render_markdown(run_id: str, outcomes: list[Outcome], ref: Reference) -> str:
    failed = [o for o in outcomes if not o.ok]
    head = "PASS" if not failed else f"FAIL: {len(failed)} of {len(outcomes)} figures regressed"
    n_noisy = sum(o.kind == "noisy" for o in outcomes)
    lines = [
        f"# Nightly reproduction check: {run_id}", "", f"**{head}**", "",
        f"Reference: `{ref.spec}`, {len(ref.seeds)} seeds ({ref.source}).", "",
        f"Test: a noisy figure regresses when it lies outside the two-sided t prediction interval of "
        f"the reference seeds (family-wise false-alarm rate {ref.false_alarm_rate:g}, Bonferroni over "
        f"{n_noisy} noisy figures); counts must match exactly. 'detects' is the interval's half-width: "
        "the smallest change this check can see.", "",
        "| figure | reference | value | detects | result |", "| --- | ---: | ---: | ---: | --- |",
    ]
    for o in outcomes:
        val = "missing" if o.value is None else f"{o.value:.4g}"
        det = "exact" if o.kind == "exact" else f"±{o.tolerance:.3g}"
        lines.append(f"| {o.name} | {o.reference:.4g} | {val} | {det} | "
                     f"{'ok' if o.ok else 'REGRESSION: ' + o.reason} |")
    return "\n".join(lines) + "\n"


def check_run(run_store: Store, ref: Reference) -> tuple[bool, list[Outcome]]:
    """Compare the run's metrics with ``ref``; write the comparison under results/. True when all pass."""
    try:
        metrics = json.loads(run_store.get_text(METRICS_KEY))
    except (NotFoundError, FileNotFoundError):
        metrics = {}
    outcomes = compare(metrics, ref)
    ok = all(o.ok for o in outcomes)
    run_id = run_store.uri.rstrip("/").rsplit("/", 1)[-1]
    summary = {
        "ok": ok,
        "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "reference": ref.model_dump(mode="json", exclude={"figures"}),
        "metrics_found": bool(metrics),
        "outcomes": [o.model_dump(mode="json") for o in outcomes],
    }
    run_store.put_text(CHECK_JSON, json.dumps(summary, indent=2) + "\n")
    run_store.put_text(CHECK_MD, render_markdown(run_id, outcomes, ref))
    return ok, outcomes


# --------------------------------------------------------------------------- making a reference
def spec_digest(spec_dump: dict[str, Any]) -> str:
    """What a reference belongs to: the spec without the fields a reference run changes."""
    return digest({k: v for k, v in spec_dump.items() if k not in {"seed", "store"}})


def _boot_se(entry: Any) -> float:
    ci = entry.get("ci") if isinstance(entry, dict) else None
    if not ci or ci[0] is None or ci[1] is None:
        return 0.0
    return (float(ci[1]) - float(ci[0])) / (2 * _Z975)


def select_figures(metrics: dict[str, Any]) -> list[tuple[str, str, str, float | None, float, int]]:
    """(path, name, kind, value, bootstrap se, n) of the figures a nightly follows, in a fixed order.

    Noisy: each arm's headline metric on average and per language, its distinct-2 on average, and
    each tuned − base change of the headline average. Exact: each arm's counts on average and per
    language. Few noisy figures keep the Bonferroni correction, and so the interval, narrow.
    """
    out: list[tuple[str, str, str, float | None, float, int]] = []
    settings = metrics.get("settings", [])
    for si, setting in enumerate(settings):
        ev = setting.get("evaluation", {})
        head = ev.get("headline_metric") or metrics.get("headline_metric")
        prefix = f"{setting.get('label')}: " if len(settings) > 1 else ""
        arms = ev.get("arms", [])
        several = len({(a.get("model_id"), a.get("prompt_set")) for a in arms}) > 1
        for ai, arm in enumerate(arms):
            who = f"{arm.get('model_id')}/{arm.get('prompt_set')}/" if several else ""
            label = f"{prefix}{who}{arm.get('arm')}"
            base = f"settings.{si}.evaluation.arms.{ai}"
            n_all = int(arm.get("counts", {}).get("rows", 0))
            for metric in (head, "dist2"):
                entry = arm.get("average", {}).get(metric)
                if entry is not None:
                    out.append((f"{base}.average.{metric}.value", f"{label} {METRIC_NAMES.get(metric, metric)}",
                                "noisy", entry.get("value"), _boot_se(entry), n_all))
            for lang, cell in arm.get("per_language", {}).items():
                entry = cell.get("metrics", {}).get(head)
                if entry is not None:
                    n = int(cell.get("counts", {}).get("rows", 0))
                    out.append((f"{base}.per_language.{lang}.metrics.{head}.value",
                                f"{label}/{lang} {METRIC_NAMES.get(head, head)}", "noisy", entry.get("value"),
                                _boot_se(entry), n))
            for c in EXACT_COUNTS:
                if c in arm.get("counts", {}):
                    out.append((f"{base}.counts.{c}", f"{label} {c.replace('_', ' ')}", "exact",
                                arm["counts"][c], 0.0, 0))
            for lang, cell in arm.get("per_language", {}).items():
                for c in ("rows", "rows_missing"):
                    if c in cell.get("counts", {}):
                        out.append((f"{base}.per_language.{lang}.counts.{c}", f"{label}/{lang} {c.replace('_', ' ')}",
                                    "exact", cell["counts"][c], 0.0, 0))
        for ci, comp in enumerate(ev.get("comparisons", [])):
            entry = comp.get("average", {}).get(head)
            if entry is not None:
                n = next((int(a.get("counts", {}).get("rows", 0)) for a in arms if a.get("input") == comp.get("tuned")), 0)
                se = _boot_se({"ci": entry.get("abs_change_ci")})
                who = f"{comp.get('model_id')}/{comp.get('prompt_set')} " if several else ""
                out.append((f"settings.{si}.evaluation.comparisons.{ci}.average.{head}.abs_change",
                            f"{prefix}{who}tuned − base {METRIC_NAMES.get(head, head)}", "noisy",
                            entry.get("abs_change"), se, n))
    return out


def make_reference(
    runs: list[tuple[int, dict[str, Any]]], spec: str, spec_digest_: str, xdetox_version: str, source: str,
    false_alarm_rate: float = 0.05, min_seeds: int = MIN_SEEDS,
) -> Reference:
    """A reference from the metrics of k runs of one spec that differ only in their seed."""
    if len(runs) < min_seeds:
        raise ReferenceError(f"a reference needs at least {min_seeds} seeds' runs; got {len(runs)}")
    per_run = [select_figures(m) for _, m in runs]
    paths = [p[0] for p in per_run[0]]
    for (seed, _), figs in zip(runs, per_run, strict=True):
        if [p[0] for p in figs] != paths:
            raise ReferenceError(f"the run with seed {seed} has other figures than the first run: "
                                 "were they made from the same spec?")
    figures: list[Figure] = []
    for i, (path, name, kind, _, _, n) in enumerate(per_run[0]):
        values = [figs[i][3] for figs in per_run]
        if any(v is None for v in values):
            raise ReferenceError(f"{name} ({path}) is missing in some runs: a reference needs every figure")
        vals = [float(v) for v in values]  # type: ignore[arg-type]
        if kind == "exact" and len(set(vals)) > 1:
            raise ReferenceError(f"{name} ({path}) differs between seeds ({sorted(set(vals))}): "
                                 "a count that depends on sampling cannot be an exact figure")
        boot = sum(figs[i][4] for figs in per_run) / len(per_run)
        figures.append(Figure(path=path, name=name, kind=kind, values=vals, boot_se=boot, n=n))
    return Reference(spec=spec, spec_digest=spec_digest_, xdetox_version=xdetox_version, source=source,
                     seeds=[s for s, _ in runs], false_alarm_rate=false_alarm_rate, figures=figures)


def check_compatible(runs: list[tuple[str, str, str]]) -> None:
    """Refuse to mix runs of different xdetox versions or spec digests: (where, version, spec digest)."""
    first = runs[0]
    for other in runs[1:]:
        if other[1] != first[1]:
            raise ReferenceError(f"{other[0]} was made by xdetox {other[1]}, {first[0]} by xdetox {first[1]}: "
                                 "a reference cannot mix versions")
        if other[2] != first[2]:
            raise ReferenceError(f"{other[0]} ran spec digest {other[2]}, {first[0]} spec digest {first[2]}: "
                                 "a reference cannot mix specs")
