"""Names a person reads: metric labels, the scorer banner, number formatting."""

from __future__ import annotations

from typing import Any

from xdetox.kinds import scorers as scorer_kinds

METRIC_LABELS: dict[str, str] = {
    "expected_maximum_toxicity": "Expected maximum toxicity",
    "toxicity_probability": "Toxicity probability",
    "average_toxicity": "Average toxicity",
    "lexicon_hit_rate": "Lexicon hit rate (samples with ≥1 hit)",
    "lexicon_prompt_hit_share": "Prompts with any lexicon hit",
    "lexicon_hits_per_sample": "Lexicon hits per sample",
    "dist1": "Distinct-1",
    "dist2": "Distinct-2",
    "dist3": "Distinct-3",
    "perplexity_median": "Median perplexity",
    "perplexity_q1": "Perplexity, first quartile",
    "perplexity_q3": "Perplexity, third quartile",
    "language_consistency": "Language consistency",  # defined in the report's notes; long labels overflow axes
}
SHORT_LABELS: dict[str, str] = {
    "expected_maximum_toxicity": "EMT",
    "toxicity_probability": "Tox. prob.",
    "average_toxicity": "Avg. tox.",
    "lexicon_hit_rate": "Lexicon hit rate",
    "lexicon_prompt_hit_share": "Lexicon prompt hit share",
    "lexicon_hits_per_sample": "Lexicon hits/sample",
    "dist1": "dist-1",
    "dist2": "dist-2",
    "dist3": "dist-3",
    "perplexity_median": "PPL (median)",
    "perplexity_q1": "PPL Q1",
    "perplexity_q3": "PPL Q3",
    "language_consistency": "Lang. consistency",
}


def label(metric: str, short: bool = False) -> str:
    return (SHORT_LABELS if short else METRIC_LABELS).get(metric, metric)


def is_lexicon(scorer: dict[str, Any], score_kind: str | None = None) -> bool:
    """Whether the numbers are hit counts (lexicon-like), from the rows' score kind or the scorer kind's declaration."""
    return score_kind == "hits" or declared_score_kind(scorer) == "hits"


def declared_score_kind(scorer: dict[str, Any]) -> str:
    """What the scorer declares it produces (a calibrated scorer: probabilities); probabilities for a
    kind this install does not know."""
    return scorer_kinds.declared_score_kind(scorer)


def banner(scorer: dict[str, Any], score_kind: str | None = None, scale: str = "raw") -> str:
    """One paragraph naming the scorer and what its numbers are (the scorer kind's own banner), and
    which scale they are on: the scorer's own, or a calibration map's."""
    if scale != "raw":
        return (f"Scorer: {scorer.get('kind', 'unknown')}, {scale} (calibration map {scorer.get('calibration')}). "
                "Numbers are the scorer's outputs mapped per language onto that reference's probability scale: "
                "comparable with other runs on the same map only; every score row keeps the raw score.")
    name = scorer.get("kind", "unknown")
    kind = scorer_kinds.find(name)
    if kind is not None:
        return kind.banner(scorer)
    if score_kind == "hits":
        return (f"Scorer: {name}. These scores are hit counts, not toxicity probabilities, and are not comparable "
                "with probability scorers nor with the papers' tables.")
    return f"Scorer: {name}."


def fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_ci(metric: dict[str, Any] | None, digits: int = 3) -> str:
    if not metric or metric.get("value") is None:
        return "–"
    ci = metric.get("ci")
    s = fmt(metric["value"], digits)
    return f"{s} [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]" if ci else s


def fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f}%"


NO_CHANGE = "no change detected"


def fmt_change(change: dict[str, Any] | None) -> str:
    """The relative change tuned vs base, unless its paired bootstrap CI of tuned − base includes 0:
    then the data cannot tell a change from noise, and a percentage would read as a finding."""
    if not change:
        return "–"
    ci = change.get("abs_change_ci")
    if ci and ci[0] is not None and ci[1] is not None and ci[0] <= 0.0 <= ci[1]:
        return NO_CHANGE
    return fmt_pct(change.get("rel_change"))
