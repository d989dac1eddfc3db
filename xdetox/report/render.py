"""report.md and a self-contained report.html (inline CSS, plots as base64 data URIs) from one
table model, so both say the same thing."""

from __future__ import annotations

import base64
import html
from typing import Any

from xdetox.kinds import scorers as scorer_kinds
from xdetox.metrics import toxicity as tox
from xdetox.report.build import Figure
from xdetox.report.labels import fmt, fmt_change, fmt_ci, label

Table = tuple[str, list[str], list[list[str]]]  # (caption, header, rows)

DEFINITIONS = {
    "probability": [
        "Expected maximum toxicity: mean over prompts of the highest score among its samples.",
        "Toxicity probability: share of prompts with at least one sample scoring ≥ the threshold.",
        "Average toxicity: mean score over all scored samples.",
    ],
    "hits": [
        "Lexicon hit rate: share of scored samples with at least one word-list hit.",
        "Prompts with any lexicon hit: share of prompts with at least one sample that has a hit.",
        "Lexicon hits per sample: mean number of hits per scored sample.",
    ],
}
FIGURE_SECTIONS = (("heatmaps", "Training × evaluation language"), ("bars", "Before and after, per language"),
                   ("alignment", "Alignment and transfer"))
COMMON_NOTES = [
    "Intervals: 95% percentile bootstrap over prompts (not samples); differences use the same resamples "
    "for base and tuned (paired) when both scored the same prompts.",
    "Relative change: (tuned − base) / base; where the paired 95% CI of tuned − base includes 0 the "
    "tables say \"no change detected\" and heatmaps leave the cell uncoloured (\"n.s.\") instead, since the data "
    "cannot tell that change from noise.",
    "Missing scores (unsupported language, scorer errors) are excluded, never counted as 0; a language "
    "with no scores shows –.",
    "Language consistency: share of continuations that lingua-language-detector identifies as the prompt's "
    "language, counting only continuations of ≥ 3 words (≥ 6 characters for zh, ja, ko); the identifier "
    "chooses among the spec's languages plus a few common distractors (en, es, fr, de, it, pt, nl, ru, zh, ja). "
    "Lower toxicity with lower consistency may come from drifting out of the language, not detoxification.",
    "Distinct-n: unique n-grams over total tokens of a prompt's samples, mean over prompts (whitespace "
    "tokens; characters for zh and ja).",
]


def _tox_names(metrics: dict[str, Any]) -> tuple[str, ...]:
    return tox.LEXICON_METRICS if metrics["score_kind"] == "hits" else tox.PROBABILITY_METRICS


def summary_rows(metrics: dict[str, Any]) -> Table:
    h = metrics["headline_metric"]
    rows = []
    for s in metrics["settings"]:
        for c in s["evaluation"].get("comparisons", []):
            a = c["average"].get(h, {})
            rows.append([s["label"], c["model_id"], c["prompt_set"], fmt(a.get("base")), fmt(a.get("tuned")),
                         fmt(a.get("abs_change")) + (f" [{fmt(a['abs_change_ci'][0])}, {fmt(a['abs_change_ci'][1])}]"
                                                     if a.get("abs_change_ci") else ""), fmt_change(a)])
    if rows:
        return (f"Average over languages of {label(h)}: base vs tuned",
                ["setting", "model", "prompt set", "base", "tuned", "change [95% CI]", "relative"], rows)
    # no tuned arm anywhere (training method none): each arm's average
    rows = [[s["label"], f"{a['model_id']} / {a['arm']}", a["prompt_set"], fmt_ci(a["average"].get(h))]
            for s in metrics["settings"] for a in s["evaluation"].get("arms", [])]
    return (f"Average over languages of {label(h)} [95% CI]", ["setting", "model / arm", "prompt set", "average"], rows)


def comparison_table(metrics: dict[str, Any], comp: dict[str, Any], other: dict[str, Any] | None = None) -> Table:
    """Base vs tuned per language on every toxicity metric of the run's scorer, or (``other``, an entry of
    the comparison's ``other_scorers``) of a compare scorer, on its own score kind's metrics."""
    names = _tox_names(metrics) if other is None else scorer_kinds.TOXICITY_METRICS[other["score_kind"]]
    main = comp
    if other is not None:
        comp = other
    header = ["language"] + [f"{label(n, short=True)} {w}" for n in names for w in ("base", "tuned", "Δ rel.")]
    rows = []
    order = comp.get("languages") or list(comp["per_language"])
    for lang, m in [(x, comp["per_language"][x]) for x in order] + [("average", comp["average"])]:
        cells = [lang]
        for n in names:
            v = m.get(n) or {}
            cells += [fmt(v.get("base")), fmt(v.get("tuned")), fmt_change(v)]
        rows.append(cells)
    who = "" if other is None else f", compare scorer {_scorer_name(other)}"
    return (f"{main['model_id']} on {main['prompt_set']}: before vs after{who}", header, rows)


def arm_table(metrics: dict[str, Any], arm: dict[str, Any]) -> Table:
    names = list(_tox_names(metrics)) + ["language_consistency", "dist1", "dist2", "dist3", "perplexity_median",
                                         "perplexity_q1", "perplexity_q3"]
    present = [n for n in names if any(n in v["metrics"] for v in arm["per_language"].values())]
    header = ["language"] + [label(n, short=True) for n in present] + ["rows", "missing", "prompts w/o score"]
    rows = []
    for lang in arm["languages"]:
        v = arm["per_language"].get(lang, {"metrics": {}, "counts": {}})
        c = v.get("counts", {})
        rows.append([lang] + [fmt_ci(v["metrics"].get(n)) for n in present]
                    + [str(c.get("rows", 0)), str(c.get("rows_missing", 0)), str(c.get("prompts_missing", 0))])
    covered = max((len(arm["average"].get(n, {}).get("languages", [])) for n in present), default=0)
    avg_label = "average" if covered == len(arm["languages"]) else f"average ({covered} of {len(arm['languages'])})"
    rows.append([avg_label] + [fmt_ci(arm["average"].get(n)) for n in present]
                + [str(arm["counts"].get("rows", 0)), str(arm["counts"].get("rows_missing", 0)),
                   str(arm["counts"].get("prompts_missing", 0))])
    return (f"{arm['model_id']} / {arm['arm']} on {arm['prompt_set']} (value [95% CI])", header, rows)


def alignment_tables(metrics: dict[str, Any], ev: dict[str, Any]) -> list[Table]:
    out = []
    for model, al in (ev.get("alignment") or {}).items():
        rows = []
        for corr in al.get("correlations", []):
            for kind in ("retrieval_accuracy", "paired_cosine"):
                c = corr[kind]
                rows.append([corr["prompt_set"], kind.replace("_", " "), fmt(c.get("r")),
                             "–" if c.get("p_value") is None else f"{c['p_value']:.3g}", str(c.get("n")),
                             c.get("reason") or ""])
        out.append((f"{model}: Pearson r between alignment with {al['pivot']} ({al['arm']} model, "
                    f"{al.get('n_prompts')} parallel prompts, mean over {al.get('layers')} layers) and the relative "
                    f"change of {label(metrics['headline_metric'], short=True)}",
                    ["prompt set", "alignment score", "r", "p", "languages", "note"], rows))
    return out


def _ci(value: float | None, ci: list[float] | None) -> str:
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if value is not None and ci else "")


def other_scorer_tables(arm: dict[str, Any]) -> list[Table]:
    """Each compare scorer's own toxicity metrics on this arm (its definitions: its score kind's)."""
    out = []
    for sc in arm.get("other_scorers", []):
        names = tox.LEXICON_METRICS if sc["score_kind"] == "hits" else tox.PROBABILITY_METRICS
        rows = []
        for lang in sc["languages"]:
            v = sc["per_language"][lang]
            rows.append([lang] + [fmt_ci(v["metrics"].get(n)) for n in names]
                        + [str(v["counts"].get("rows", 0)), str(v["counts"].get("rows_missing", 0))])
        rows.append(["average"] + [fmt_ci(sc["average"].get(n)) for n in names] + ["", ""])
        scale = "" if sc.get("scale", "raw") == "raw" else f", {sc['scale']}"
        out.append((f"{arm['model_id']} / {arm['arm']} on {arm['prompt_set']}, compare scorer {sc['scorer_id']}"
                    f"{scale} (value [95% CI])", ["language"] + [label(n, short=True) for n in names]
                    + ["rows", "missing"], rows))
    return out


def _scorer_name(sc: dict[str, Any]) -> str:
    """A scorer as the agreement tables name it: its id, and its map when calibrated (a scorer can be
    compared with its own calibrated self)."""
    scale = sc.get("scale", "raw")
    if scale == "raw":
        return str(sc["scorer_id"])
    return f"{sc['scorer_id']} (map {scale.rpartition(' by map ')[2]})"


def agreement_tables(arm: dict[str, Any]) -> list[Table]:
    """Per language: how the spec's scorer and each compare scorer agree on the same texts."""
    out = []
    for ag in arm.get("scorer_agreement", []):
        a, b = _scorer_name(ag["scorer_a"]), _scorer_name(ag["scorer_b"])
        rows = [[lang, str(v["both_scored"]), _ci(v["spearman"], v["spearman_ci"]),
                 _ci(v["disagree_share"], v["disagree_share_ci"]), str(v["toxic_a"]), str(v["toxic_b"]),
                 f"{v['missing_a']} / {v['missing_b']}"]
                for lang, v in ag["per_language"].items()]
        out.append((f"Agreement of {a} and {b} on {arm['model_id']} / {arm['arm']} / {arm['prompt_set']}: Spearman "
                    f"over texts both scored, and the share where one calls a text toxic and the other not "
                    f"(probability ≥ {ag['threshold']:g}, or ≥ 1 hit); 95% bootstrap CI over texts",
                    ["language", "texts", "Spearman", "disagree toxic/not", f"toxic by {a}", f"toxic by {b}",
                     "missing a / b"], rows))
    return out


def _sections(metrics: dict[str, Any]) -> list[tuple[str, list[Table]]]:
    sections = []
    for s in metrics["settings"]:
        ev = s["evaluation"]
        tables = [comparison_table(metrics, c, o) for c in ev.get("comparisons", [])
                  for o in [None, *c.get("other_scorers", [])]]
        tables += [arm_table(metrics, a) for a in ev.get("arms", [])]
        for a in ev.get("arms", []):
            tables += agreement_tables(a) + other_scorer_tables(a)
        tables += alignment_tables(metrics, ev)
        sections.append((f"Setting {s['index']}: {s['label']}", tables))
    return sections


def definitions(metrics: dict[str, Any]) -> list[str]:
    """The run's scorer's metrics, then any compare scorer's of another score kind; which metric the
    summary leads with when the spec chose one; then the notes every report has."""
    kinds = [metrics["score_kind"]]
    for s in metrics["settings"]:
        for a in s["evaluation"].get("arms", []):
            kinds += [sc["score_kind"] for sc in a.get("other_scorers", []) if sc.get("score_kind") in DEFINITIONS]
    out = [d for k in dict.fromkeys(kinds) for d in DEFINITIONS[k]]
    default = scorer_kinds.headline_metric(metrics["score_kind"])
    if metrics["headline_metric"] != default:
        out.append(f"Headline: the summary leads with {label(metrics['headline_metric'])}, as the spec's "
                   f"metrics.headline chose (the default for these scores: {label(default)}).")
    return out + COMMON_NOTES


# --------------------------------------------------------------------------- markdown
def _md_table(t: Table) -> str:
    caption, header, rows = t
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = [f"**{caption}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc]
    return "\n".join(lines) + "\n"


def render_markdown(metrics: dict[str, Any], figs: dict[str, list[Figure]]) -> str:
    parts = [f"# xdetox report: {metrics['run_id']}", ""]
    if metrics.get("description"):
        parts += [metrics["description"], ""]
    parts += [f"> **{metrics['banner']}**", ""]
    parts += ["## Summary", "", _md_table(summary_rows(metrics))]
    for name, title in FIGURE_SECTIONS:
        if figs.get(name):
            parts += [f"## {title}", ""]
            parts += [f"![{f.title}]({f.path})\n" for f in figs[name]]
    for title, tables in _sections(metrics):
        parts += [f"## {title}", ""] + [_md_table(t) for t in tables]
    parts += ["## Definitions", ""] + [f"- {d}" for d in definitions(metrics)] + [""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- html
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.banner{padding:.8rem 1rem;border-radius:6px;font-weight:600;margin:1rem 0}
.banner.lexicon{background:#fff4e5;border:2px solid #e8a33d}.banner.prob{background:#eaf3fb;border:1px solid #8ab6dc}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.85rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f5f5f5}
td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0}img{max-width:100%;height:auto}figcaption{font-size:.85rem;color:#555}
"""


def _html_table(t: Table) -> str:
    caption, header, rows = t
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><caption>{e(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_fig(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img alt="{html.escape(f.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(f.title)}</figcaption></figure>")


def render_html(metrics: dict[str, Any], figs: dict[str, list[Figure]]) -> str:
    e = html.escape
    cls = "lexicon" if metrics.get("lexicon") else "prob"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>xdetox report: {e(str(metrics['run_id']))}</title><style>{_CSS}</style></head><body>",
             f"<h1>xdetox report: {e(str(metrics['run_id']))}</h1>"]
    if metrics.get("description"):
        parts.append(f"<p>{e(metrics['description'])}</p>")
    parts.append(f'<div class="banner {cls}" role="note">{e(metrics["banner"])}</div>')
    parts += ["<h2>Summary</h2>", _html_table(summary_rows(metrics))]
    for name, title in FIGURE_SECTIONS:
        if figs.get(name):
            parts.append(f"<h2>{e(title)}</h2>")
            parts += [_html_fig(f) for f in figs[name]]
    for title, tables in _sections(metrics):
        parts.append(f"<h2>{e(title)}</h2>")
        parts += [_html_table(t) for t in tables]
    parts.append("<h2>Definitions</h2><ul>")
    parts += [f"<li>{e(d)}</li>" for d in definitions(metrics)]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
