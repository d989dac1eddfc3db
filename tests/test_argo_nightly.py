"""Nightly reproduction check: metrics against reference values within tolerances."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from xdetox.cli import app
from xdetox.executors.argo.nightly import CHECK_JSON, Check, Reference, check_run, compare, make_reference
from xdetox.store import open_store

ROOT = Path(__file__).resolve().parents[1]
METRICS = {"settings": [{"toxicity": {"en": {"emt": 0.40, "prob": 0.25, "seconds": 12.0}, "de": {"emt": None}}}],
           "elapsed_seconds": 99.0, "n": 48}


def _ref(*checks: Check) -> Reference:
    return Reference(spec="jobs/nightly.yaml", source="test", checks=list(checks))


def test_within_and_outside_tolerance() -> None:
    out = compare(METRICS, _ref(
        Check(path="settings.0.toxicity.en.emt", value=0.41, abs_tol=0.02),
        Check(path="settings.0.toxicity.en.prob", value=0.30, abs_tol=0.02),
        Check(path="n", value=50, rel_tol=0.05),
    ))
    assert [o.ok for o in out] == [True, False, True]
    assert "diff" in out[1].reason and out[1].value == pytest.approx(0.25)


def test_missing_or_none_metric_is_a_regression_never_zero() -> None:
    out = compare(METRICS, _ref(Check(path="settings.0.toxicity.de.emt", value=0.0, abs_tol=1.0),
                                Check(path="settings.3.x", value=0.0, abs_tol=1.0)))
    assert [o.ok for o in out] == [False, False]
    assert out[0].value is None and "not a number" in out[0].reason
    assert out[1].reason == "missing"


def test_make_reference_skips_timings_and_missing() -> None:
    ref = make_reference(METRICS, "jobs/nightly.yaml", "test", 0.02, 0.0)
    paths = [c.path for c in ref.checks]
    assert paths == ["settings.0.toxicity.en.emt", "settings.0.toxicity.en.prob", "n"]
    assert all(compare(METRICS, ref)[i].ok for i in range(3))
    only = make_reference(METRICS, "x", "y", 0.1, 0.0, prefixes=["settings.0.toxicity.en"])
    assert [c.path for c in only.checks] == paths[:2]
    with pytest.raises(ValueError):
        make_reference({"seconds": 3.0}, "x", "y", 0.1, 0.0)


def test_check_run_writes_the_comparison(tmp_path: Path) -> None:
    rs = open_store(tmp_path.as_uri()).child("runs/nightly")
    rs.put_text("results/metrics.json", json.dumps(METRICS))
    ok, _ = check_run(rs, _ref(Check(path="n", value=48)))
    assert ok and json.loads(rs.get_text(CHECK_JSON))["ok"] is True
    ok, _ = check_run(rs, _ref(Check(path="n", value=40, abs_tol=1)))
    assert not ok
    assert "REGRESSION" in rs.get_text("results/nightly-check.md")


def test_cli_exit_codes(tmp_path: Path) -> None:
    rs = open_store(tmp_path.as_uri()).child("runs/nightly")
    rs.put_text("results/metrics.json", json.dumps(METRICS))
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(_ref(Check(path="n", value=48.5, abs_tol=1)).model_dump_json())
    bad.write_text(_ref(Check(path="n", value=10, abs_tol=1)).model_dump_json())
    runner = CliRunner()
    base = ["argo", "check-nightly", "--store", tmp_path.as_uri(), "--run", "nightly", "--reference"]
    assert runner.invoke(app, [*base, str(good)]).exit_code == 0
    res = runner.invoke(app, [*base, str(bad)])
    assert res.exit_code == 1 and "REGRESSION" in res.output
    broken = tmp_path / "broken.json"
    broken.write_text('{"spec": "x", "checks": []}')
    res = runner.invoke(app, [*base, str(broken)])
    assert res.exit_code == 2 and "broken.json" in res.output


def test_committed_reference_is_well_formed() -> None:
    path = ROOT / "jobs" / "nightly-reference.json"
    if not path.exists():
        pytest.fail("jobs/nightly-reference.json is missing: generate it with `xdetox argo make-reference`")
    ref = Reference.model_validate_json(path.read_text())
    assert ref.spec == "jobs/nightly.yaml" and "xdetox run" in ref.source
    assert all(math.isfinite(c.value) and (c.abs_tol > 0 or c.rel_tol > 0) for c in ref.checks)
