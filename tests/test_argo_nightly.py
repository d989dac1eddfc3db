"""Nightly reproduction check: a run against the distribution of k reference seeds.

Expected tolerances are worked out here from the formula with t quantiles taken from tables, not
from the code under test; the committed reference's own seeds show that the check stays quiet on
unchanged runs (leave-one-out) and fires on real regressions.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.executors.argo.nightly import (
    CHECK_JSON,
    Figure,
    Reference,
    ReferenceError,
    check_compatible,
    check_run,
    compare,
    make_reference,
    tolerance,
)
from xdetox.store import open_store

ROOT = Path(__file__).resolve().parents[1]
T_4_0975 = 2.7764451051977987  # t quantile, 4 degrees of freedom, 0.975 (tables)
T_4_09975 = 5.5975684  # 4 degrees of freedom, 1 - 0.05 / (2 * 10) (tables, 8 digits)


def _ref(*figures: Figure, alpha: float = 0.05) -> Reference:
    return Reference(spec="jobs/nightly.yaml", spec_digest="d", xdetox_version="0.1.0", source="test",
                     seeds=list(range(len(figures[0].values))), false_alarm_rate=alpha, figures=list(figures))


def test_prediction_interval_half_width_by_hand() -> None:
    f = Figure(path="a", name="a", kind="noisy", values=[0.1, 0.2, 0.3, 0.4, 0.5])
    # mean 0.3; sd = sqrt((0.04 + 0.01 + 0 + 0.01 + 0.04) / 4) = sqrt(0.025)
    expected = T_4_0975 * math.sqrt(0.025) * math.sqrt(1 + 1 / 5)
    assert tolerance(f, 0.05, 1) == pytest.approx(expected, rel=1e-9)
    # Bonferroni over 10 noisy figures widens it to the 1 - 0.0025 quantile
    assert tolerance(f, 0.05, 10) == pytest.approx(T_4_09975 * math.sqrt(0.025) * math.sqrt(1.2), rel=1e-7)


def test_binomial_floor_when_every_seed_gave_zero() -> None:
    f = Figure(path="a", name="a", kind="noisy", values=[0.0] * 5, n=100)
    floor = math.sqrt(0.01 * 0.99 / 100)  # p = 1/n for a rate that was 0 in every seed
    assert tolerance(f, 0.05, 1) == pytest.approx(T_4_0975 * floor * math.sqrt(1.2), rel=1e-9)
    # the runs' own bootstrap standard error is a floor too
    g = Figure(path="a", name="a", kind="noisy", values=[0.0] * 5, boot_se=0.02)
    assert tolerance(g, 0.05, 1) == pytest.approx(T_4_0975 * 0.02 * math.sqrt(1.2), rel=1e-9)


def test_noisy_exact_and_missing_figures() -> None:
    noisy = Figure(path="x.rate", name="tuned/de toxicity rate", kind="noisy", values=[0.1, 0.2, 0.3, 0.4, 0.5])
    exact = Figure(path="x.rows", name="tuned rows", kind="exact", values=[64.0] * 5)
    ref = _ref(noisy, exact)
    half = T_4_09975 / T_4_09975 * tolerance(noisy, 0.05, 1)  # one noisy figure: no correction
    ok = compare({"x": {"rate": 0.3 + 0.99 * half, "rows": 64}}, ref)
    assert [o.ok for o in ok] == [True, True] and ok[0].name == "tuned/de toxicity rate"
    bad = compare({"x": {"rate": 0.3 + 1.01 * half, "rows": 63}}, ref)
    assert [o.ok for o in bad] == [False, False]
    missing = compare({"x": {"rate": None}}, ref)
    assert [o.ok for o in missing] == [False, False]  # a missing score is missing, never 0
    assert "not a number" in missing[0].reason and missing[1].reason == "missing"


def _metrics(runs: int = 5) -> list[tuple[int, dict[str, Any]]]:
    """Small but complete metrics.json documents, as the evaluate and report steps write them."""
    out = []
    for seed in range(runs):
        def arm(name: str, rate: float, seed: int = seed) -> dict[str, Any]:
            cell = {"counts": {"rows": 64, "rows_missing": 0},
                    "metrics": {"lexicon_hit_rate": {"value": rate, "ci": [rate - 0.02, rate + 0.02]}}}
            return {"arm": name, "model_id": "tiny", "prompt_set": "xling", "input": name,
                    "counts": {"rows": 64, "rows_missing": 0, "prompts": 16},
                    "average": {"lexicon_hit_rate": {"value": rate, "ci": [rate - 0.02, rate + 0.02]},
                                "dist2": {"value": 0.7 + seed / 1000, "ci": [0.68, 0.72]}},
                    "per_language": {"de": cell}}
        base, tuned = 0.05 + seed / 200, 0.005 + seed / 1000
        ev = {"headline_metric": "lexicon_hit_rate", "arms": [arm("base", base), arm("tuned", tuned)],
              "comparisons": [{"model_id": "tiny", "prompt_set": "xling", "tuned": "tuned",
                               "average": {"lexicon_hit_rate": {"abs_change": tuned - base,
                                                                "abs_change_ci": [tuned - base - 0.02,
                                                                                  tuned - base + 0.02]}}}]}
        out.append((seed, {"headline_metric": "lexicon_hit_rate", "settings": [{"label": "d", "evaluation": ev}]}))
    return out


def test_make_reference_names_figures_and_refuses_bad_inputs() -> None:
    runs = _metrics()
    ref = make_reference(runs, "jobs/nightly.yaml", "d", "0.1.0", "test")
    names = {f.name: f for f in ref.figures}
    assert names["tuned/de lexicon hit rate"].kind == "noisy"
    assert names["base distinct-2"].values == pytest.approx([0.7, 0.701, 0.702, 0.703, 0.704])
    assert names["tuned rows missing"].kind == "exact" and names["tuned rows missing"].values == [0.0] * 5
    assert names["tuned − base lexicon hit rate"].kind == "noisy"
    assert all(compare(m, ref)[i].ok for _, m in runs for i in range(len(ref.figures)))
    with pytest.raises(ReferenceError, match="at least 5"):
        make_reference(runs[:3], "x", "d", "v", "s")
    drifting = copy.deepcopy(runs)
    drifting[2][1]["settings"][0]["evaluation"]["arms"][0]["counts"]["rows"] = 65
    with pytest.raises(ReferenceError, match="differs between seeds"):
        make_reference(drifting, "x", "d", "v", "s")


def test_references_never_mix_versions_or_specs() -> None:
    check_compatible([("a", "0.1.0", "s1"), ("b", "0.1.0", "s1")])
    with pytest.raises(ReferenceError, match=r"xdetox 0\.2\.0.*xdetox 0\.1\.0"):
        check_compatible([("a", "0.1.0", "s1"), ("b", "0.2.0", "s1")])
    with pytest.raises(ReferenceError, match="spec digest s2.*spec digest s1"):
        check_compatible([("a", "0.1.0", "s1"), ("b", "0.1.0", "s2")])


def _set(obj: dict[str, Any], path: str, value: float) -> None:
    parts = path.split(".")
    cur: Any = obj
    for p, nxt in zip(parts[:-1], parts[1:], strict=True):
        key: Any = int(p) if p.isdigit() else p
        if isinstance(cur, list):
            while len(cur) <= key:
                cur.append({})
            cur = cur[key]
        else:
            cur = cur.setdefault(key, [] if nxt.isdigit() else {})
    cur[parts[-1]] = value


def _committed() -> Reference:
    path = ROOT / "jobs" / "nightly-reference.json"
    assert path.exists(), "jobs/nightly-reference.json is missing: `xdetox argo make-reference jobs/nightly.yaml`"
    return Reference.model_validate_json(path.read_text())


def _leave_one_out(ref: Reference, i: int) -> tuple[Reference, dict[str, Any]]:
    rest = [Figure(**{**f.model_dump(), "values": [v for j, v in enumerate(f.values) if j != i]})
            for f in ref.figures]
    run: dict[str, Any] = {}
    for f in ref.figures:
        _set(run, f.path, f.values[i])
    return ref.model_copy(update={"figures": rest, "seeds": [s for j, s in enumerate(ref.seeds) if j != i]}), run


def test_committed_reference_is_quiet_on_each_of_its_seeds_left_out() -> None:
    """Each reference seed, checked against the others, is an unchanged run on other numbers: no alarm."""
    ref = _committed()
    assert len(ref.seeds) >= 5 and ref.spec == "jobs/nightly.yaml"
    assert any(f.kind == "exact" for f in ref.figures) and any(f.kind == "noisy" for f in ref.figures)
    for i in range(len(ref.seeds)):
        others, run = _leave_one_out(ref, i)
        bad = [o for o in compare(run, others) if not o.ok]
        assert not bad, f"seed {ref.seeds[i]}: {[(o.name, o.value, o.reference, o.tolerance) for o in bad]}"


def test_committed_reference_catches_tuning_that_does_nothing_and_half_missing_scores() -> None:
    ref = _committed()
    _, run = _leave_one_out(ref, 0)
    by_name = {f.name: f for f in ref.figures}
    untuned = copy.deepcopy(run)
    for f in ref.figures:  # the tuned arm reproduces the base arm: a tuning step that does nothing
        if f.name.startswith("tuned") and "−" not in f.name:
            twin = by_name.get("base" + f.name[len("tuned"):])
            if twin is not None:
                _set(untuned, f.path, twin.values[0])
        if "tuned − base" in f.name:
            _set(untuned, f.path, 0.0)
    fired = [o.name for o in compare(untuned, ref) if not o.ok]
    assert any("tuned" in n for n in fired), fired
    half = copy.deepcopy(run)
    for f in ref.figures:  # a scorer that returns half its scores
        if f.name.endswith("rows missing"):
            rows = by_name[f.name[: -len(" missing")]].values[0]
            _set(half, f.path, rows // 2)
    fired = [o.name for o in compare(half, ref) if not o.ok]
    assert fired and all("missing" in n for n in fired), fired


def test_check_run_writes_readable_names(tmp_path: Path) -> None:
    rs = open_store(tmp_path.as_uri()).child("runs/nightly")
    rs.put_text("results/metrics.json", json.dumps({"x": {"rows": 64}}))
    ref = _ref(Figure(path="x.rows", name="tuned/de rows", kind="exact", values=[64.0] * 5))
    ok, _ = check_run(rs, ref)
    assert ok and json.loads(rs.get_text(CHECK_JSON))["ok"] is True
    assert "| tuned/de rows |" in rs.get_text("results/nightly-check.md")
    ok, _ = check_run(rs, _ref(Figure(path="x.rows", name="tuned/de rows", kind="exact", values=[40.0] * 5)))
    assert not ok and "REGRESSION" in rs.get_text("results/nightly-check.md")


def test_cli_exit_codes(tmp_path: Path) -> None:
    rs = open_store(tmp_path.as_uri()).child("runs/nightly")
    rs.put_text("results/metrics.json", json.dumps({"n": 48}))
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(_ref(Figure(path="n", name="n", kind="exact", values=[48.0] * 5)).model_dump_json())
    bad.write_text(_ref(Figure(path="n", name="n", kind="exact", values=[10.0] * 5)).model_dump_json())
    runner = CliRunner()
    base = ["argo", "check-nightly", "--store", tmp_path.as_uri(), "--run", "nightly", "--reference"]
    assert runner.invoke(app, [*base, str(good)]).exit_code == 0
    res = runner.invoke(app, [*base, str(bad)])
    assert res.exit_code == 1 and "REGRESSION" in res.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"spec": "x", "figures": []}')
    res = runner.invoke(app, [*base, str(broken)])
    assert res.exit_code == 2 and "broken.json" in res.output
