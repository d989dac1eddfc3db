"""The one-screen summary `make run` prints at the end: headline metric, base vs tuned, with CI."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from xdetox.kinds import scorers as scorer_kinds
from xdetox.report.labels import fmt, fmt_change, fmt_ci, label

MAX_ROWS = 30


def _metric(arm: dict[str, Any] | None, lang: str | None, metric: str) -> dict[str, Any] | None:
    """An arm's metric (value and CI), over all languages (``lang`` None) or one; None if absent."""
    if arm is None:
        return None
    m = arm["average"].get(metric) if lang is None else arm["per_language"].get(lang, {}).get("metrics", {}).get(metric)
    return m if isinstance(m, dict) else None


def _ci_of(arm: dict[str, Any] | None, lang: str | None, metric: str) -> str:
    return fmt_ci(_metric(arm, lang, metric))


LC = "language_consistency"


def _value(arm: dict[str, Any] | None, lang: str | None, metric: str) -> float | None:
    m = _metric(arm, lang, metric)
    return m.get("value") if m is not None else None


def _pair(base: dict[str, Any] | None, tuned: dict[str, Any] | None, lang: str | None) -> str:
    return f"{fmt(_value(base, lang, LC), 2)}→{fmt(_value(tuned, lang, LC), 2)}"


def summary_table(metrics: dict[str, Any]) -> Table:
    """Per language base vs tuned headline metric with its 95% CI, and the average.

    Takes the report's metrics.json (all settings) or one evaluation's metrics.json. With several
    settings or comparisons, one row per comparison's average keeps it to one screen.
    """
    settings = metrics.get("settings") or [{"label": "", "evaluation": metrics}]
    headline = metrics.get("headline_metric") or settings[0]["evaluation"].get("headline_metric", "")
    comps = [(s, c) for s in settings for c in s["evaluation"].get("comparisons", [])]
    table = Table(title=f"{label(headline)} — base vs tuned (95% CI)")
    if metrics.get("lexicon") or metrics.get("score_kind") == "hits":
        table.caption = "scores are lexicon hits, not probabilities"
    scale = metrics.get("scale") or settings[0]["evaluation"].get("scale") or "raw"
    if scale != "raw":  # a calibration map's scale: say whose
        table.caption = f"scores {scale}"
    if len(comps) == 1:
        s, c = comps[0]
        arms = {a["input"]: a for a in s["evaluation"]["arms"]}
        b, t = arms.get(c["base"]), arms.get(c["tuned"])
        # beside the toxicity, how much of it is in the prompt's language: lower toxicity with lower
        # consistency may be drift out of the language, not detoxification (issue 17)
        lc = any(_value(a, None, LC) is not None for a in (b, t))
        for col in ("language", "base", "tuned", "relative change") + (("in language",) if lc else ()):
            table.add_column(col, justify="left" if col == "language" else "right")
        order = c.get("languages") or list(c["per_language"])
        for lang, row in [(x, c["per_language"][x]) for x in order][:MAX_ROWS]:
            table.add_row(lang, _ci_of(b, lang, headline), _ci_of(t, lang, headline),
                          fmt_change(row.get(headline)), *((_pair(b, t, lang),) if lc else ()))
        table.add_row("[bold]average[/bold]", _ci_of(b, None, headline), _ci_of(t, None, headline),
                      fmt_change(c["average"].get(headline)), *((_pair(b, t, None),) if lc else ()), end_section=True)
        return table
    if comps:
        for col in ("setting", "model", "prompts", "base avg", "tuned avg", "relative change"):
            table.add_column(col, justify="right" if "avg" in col or "change" in col else "left")
        for s, c in comps[:MAX_ROWS]:
            a = c["average"].get(headline) or {}
            table.add_row(s.get("label", ""), c["model_id"], c["prompt_set"], fmt(a.get("base")),
                          fmt(a.get("tuned")), fmt_change(a))
        if len(comps) > MAX_ROWS:
            table.caption = "; ".join(x for x in (table.caption, f"{len(comps) - MAX_ROWS} more comparisons in "
                                                  "results/metrics.json") if x)
        return table
    # no tuned arm (e.g. training method none): the arms' averages
    table.title = f"{label(headline)}, average over languages (95% CI)"
    for col in ("setting", "model / arm", "prompts", "average"):
        table.add_column(col)
    for s in settings:
        for a in s["evaluation"].get("arms", [])[:MAX_ROWS]:
            table.add_row(s.get("label", ""), f"{a['model_id']} / {a['arm']}", a["prompt_set"],
                          fmt_ci(a["average"].get(headline)))
    return table


def _same_scorer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("scorer_id", "scorer_version", "scale"))


def _spearman(arm: dict[str, Any] | None, other: dict[str, Any], lang: str) -> float | None:
    """The run's scorer's Spearman with ``other`` on this arm's texts of one language."""
    for ag in (arm or {}).get("scorer_agreement", []):
        if _same_scorer(ag["scorer_b"], other):
            return ag["per_language"].get(lang, {}).get("spearman")
    return None


def beside_tables(metrics: dict[str, Any]) -> list[Table]:
    """With one comparison and compare scorers (``scoring: [a, b]``): per compare scorer, its own
    headline (its score kind's default) base vs tuned per language with CIs and whether it changed,
    and its Spearman with the run's scorer on the base and the tuned texts: whether the two scorers
    tell the same story. Empty otherwise (an evaluation from before compare scorers were compared)."""
    settings = metrics.get("settings") or [{"label": "", "evaluation": metrics}]
    comps = [(s, c) for s in settings for c in s["evaluation"].get("comparisons", [])]
    if len(comps) != 1:
        return []
    s, c = comps[0]
    arms = {a["input"]: a for a in s["evaluation"]["arms"]}
    b, t = arms.get(c["base"]), arms.get(c["tuned"])
    out = []
    for other in c.get("other_scorers", []):
        h = scorer_kinds.headline_metric(other["score_kind"])
        own = [next((x for x in (a or {}).get("other_scorers", []) if _same_scorer(x, other)), None) for a in (b, t)]
        table = Table(title=f"Beside it: {other['scorer_id']}, {label(h)} — base vs tuned (95% CI)")
        table.caption = "Spearman: with the run's scorer on the same texts, base→tuned"
        for col in ("language", "base", "tuned", "relative change", "Spearman"):
            table.add_column(col, justify="left" if col == "language" else "right")
        for lang in [x for x in (c.get("languages") or list(c["per_language"])) if x in other["per_language"]][:MAX_ROWS]:
            table.add_row(lang, _ci_of(own[0], lang, h), _ci_of(own[1], lang, h),
                          fmt_change(other["per_language"][lang].get(h)),
                          f"{fmt(_spearman(b, other, lang), 2)}→{fmt(_spearman(t, other, lang), 2)}")
        table.add_row("[bold]average[/bold]", _ci_of(own[0], None, h), _ci_of(own[1], None, h),
                      fmt_change(other["average"].get(h)), "", end_section=True)
        out.append(table)
    return out
