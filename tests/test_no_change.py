"""Where the paired CI of tuned − base includes 0, tables say "no change detected", never a percentage."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from xdetox.report.labels import fmt_change
from xdetox.report.render import comparison_table, summary_rows
from xdetox.report.summary import summary_table

H = "lexicon_hit_rate"


def _row(base: float, tuned: float, lo: float, hi: float) -> dict[str, Any]:
    return {"base": base, "tuned": tuned, "abs_change": tuned - base, "rel_change": (tuned - base) / base,
            "abs_change_ci": [lo, hi]}


def _metrics() -> dict[str, Any]:
    # de: 0.20 -> 0.10, CI [-0.15, -0.05] excludes 0 -> -50.0 %; es: 0.004 -> 0.006, CI [-0.01, 0.02]
    # includes 0 -> no change; average 0.102 -> 0.053, CI [-0.08, -0.01] excludes 0 -> -48.0 %
    comp = {"model_id": "tiny", "prompt_set": "smoke", "base": "score:tiny:base", "tuned": "score:tiny:tuned",
            "languages": ["de", "es"],
            "per_language": {"de": {H: _row(0.20, 0.10, -0.15, -0.05)}, "es": {H: _row(0.004, 0.006, -0.01, 0.02)}},
            "average": {H: _row(0.102, 0.053, -0.08, -0.01)}}
    ev = {"headline_metric": H, "score_kind": "hits", "arms": [], "comparisons": [comp]}
    return {"headline_metric": H, "score_kind": "hits", "settings": [{"index": 0, "label": "en-only", "evaluation": ev}]}


def _text(table: Any) -> str:
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(table)
    return buf.getvalue()


def test_fmt_change_edges() -> None:
    assert fmt_change({"rel_change": 0.5, "abs_change_ci": [0.0, 0.2]}) == "no change detected"  # 0 on the edge
    assert fmt_change({"rel_change": -0.25, "abs_change_ci": [-0.3, -0.01]}) == "-25.0%"
    assert fmt_change({"rel_change": -0.25, "abs_change_ci": None}) == "-25.0%"  # no CI: nothing to decide with
    assert fmt_change(None) == "–"


def test_summary_and_report_say_no_change_where_ci_includes_zero() -> None:
    m = _metrics()
    lines = {ln.split("│")[1].strip(): ln for ln in _text(summary_table(m)).splitlines() if ln.count("│") > 2}
    assert "no change detected" in lines["es"] and "%" not in lines["es"]
    assert "-50.0%" in lines["de"]
    assert "-48.0%" in next(v for k, v in lines.items() if "average" in k)
    _, header, rows = comparison_table(m, m["settings"][0]["evaluation"]["comparisons"][0])
    by_lang = {r[0]: r for r in rows}
    col = header.index("Lexicon hit rate Δ rel.")
    assert by_lang["es"][col] == "no change detected"
    assert by_lang["de"][col] == "-50.0%"
    _, _, srows = summary_rows(m)
    assert srows[0][-1] == "-48.0%"
    m["settings"][0]["evaluation"]["comparisons"][0]["average"][H]["abs_change_ci"] = [-0.08, 0.01]
    assert summary_rows(m)[2][0][-1] == "no change detected"
