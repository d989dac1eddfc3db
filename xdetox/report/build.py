"""Assemble the report from the report step's params and each setting's evaluation.

``build_report`` is pure (dicts in, ``{relative path: bytes}`` out), so the report step, the
``xdetox report`` command and the tests all produce the same files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xdetox.kinds import scorers as scorer_kinds
from xdetox.metrics.language import LANGUAGE_METRIC
from xdetox.report import plots
from xdetox.report.labels import NO_CHANGE, banner, declared_score_kind, fmt_change, is_lexicon, label

MAX_BAR_PLOTS = 24
MAX_SCATTER_PLOTS = 12
MAX_HEATMAPS = 24
TRAIN_LANG_KEYS = ("training.data.languages",)


@dataclass
class Figure:
    path: str  # relative to the report folder: plots/<name>.png
    title: str
    png: bytes = field(repr=False)


def _slug(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")[:80] or "plot"


def report_metrics(params: dict[str, Any], evaluations: list[dict[str, Any]]) -> dict[str, Any]:
    """The report's metrics.json: every setting's evaluation plus what applies to all of them."""
    settings = params.get("settings") or [{"index": i, "label": f"setting {i}", "overrides": {}}
                                          for i in range(len(evaluations))]
    if len(settings) != len(evaluations):
        raise ValueError(f"report: {len(settings)} settings but {len(evaluations)} evaluations")
    kinds = {e.get("score_kind") for e in evaluations if e.get("score_kind")}
    if len(kinds) > 1:
        raise ValueError(f"report: settings mix score kinds {sorted(kinds)}")
    scales = {e.get("scale") or "raw" for e in evaluations}
    if len(scales) > 1:
        raise ValueError(f"report: settings mix score scales {sorted(scales)}")
    scale = scales.pop() if scales else "raw"
    scorer = params.get("scorer") or {}
    score_kind = kinds.pop() if kinds else declared_score_kind(scorer)
    # each evaluation says which metric it leads with (the spec's metrics.headline or its score kind's
    # default); one report leads with one
    headlines = {e["headline_metric"] for e in evaluations if e.get("headline_metric")}
    if len(headlines) > 1:
        raise ValueError(f"report: settings lead with different headline metrics {sorted(headlines)}")
    headline = headlines.pop() if headlines else scorer_kinds.headline_metric(score_kind)
    return {
        "run_id": params.get("run_id"),
        "description": params.get("description", ""),
        "scorer": scorer,
        "score_kind": score_kind,
        "headline_metric": headline,
        "scale": scale,
        **({"compare_scorers": params["compare_scorers"]} if params.get("compare_scorers") else {}),
        "banner": banner(scorer, score_kind, scale),
        "lexicon": is_lexicon(scorer, score_kind),
        "matrix": params.get("matrix", {}),
        "settings": [{**{k: s.get(k) for k in ("index", "label", "overrides")}, "evaluation": ev}
                     for s, ev in zip(settings, evaluations, strict=True)],
    }


def _train_label(overrides: dict[str, Any]) -> str | None:
    """The heatmap row of a setting that varies training languages; None when it does not."""
    langs = next((overrides[k] for k in TRAIN_LANG_KEYS if k in overrides), None)
    data = overrides.get("training.data")
    if langs is None and isinstance(data, dict):
        langs = data.get("languages")
    if langs is None:
        return None
    text = "+".join(langs) if isinstance(langs, list) else str(langs)
    return str(overrides["label"]) if overrides.get("label") else f"train {text}"


def heatmap_tables(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Paper 2's grid: per (model, prompt set, other overrides), rows = training settings, columns =
    evaluation languages, cells = relative change of the headline metric (tuned vs base)."""
    headline = metrics["headline_metric"]
    grids: dict[tuple[str, str, str], dict[str, Any]] = {}
    for s in metrics["settings"]:
        row = _train_label(s.get("overrides") or {})
        if row is None:
            continue
        rest = {k: v for k, v in (s.get("overrides") or {}).items()
                if k not in TRAIN_LANG_KEYS and k not in {"training.data", "label", "training.data.fraction"}}
        rest_label = ", ".join(f"{k}={v}" for k, v in sorted(rest.items()))
        for comp in s["evaluation"].get("comparisons", []):
            g = grids.setdefault((comp["model_id"], comp["prompt_set"], rest_label),
                                 {"model_id": comp["model_id"], "prompt_set": comp["prompt_set"],
                                  "other": rest_label, "rows": [], "cols": [], "cells": {}})
            if row not in g["rows"]:
                g["rows"].append(row)
            for lang, m in comp["per_language"].items():
                if lang not in g["cols"]:
                    g["cols"].append(lang)
                g["cells"][(row, lang)] = m.get(headline) or {}
    out = []
    for g in grids.values():
        if len(g["rows"]) < 2:
            continue  # one training setting is a bar chart, not a grid
        cells = [[g["cells"].get((r, c)) or {} for c in g["cols"]] for r in g["rows"]]
        vals = np.array([[np.nan if c.get("rel_change") is None else c["rel_change"] for c in row] for row in cells],
                        dtype=float)
        # a cell whose paired CI of tuned − base includes 0 is drawn as "no change detected", uncoloured,
        # as the tables print it: colouring it would present noise as a finding
        detected = np.array([[fmt_change(c) != NO_CHANGE for c in row] for row in cells], dtype=bool)
        out.append({**{k: g[k] for k in ("model_id", "prompt_set", "other", "rows", "cols")}, "values": vals,
                    "detected": detected})
    return out


def figures(metrics: dict[str, Any]) -> dict[str, list[Figure]]:
    headline = metrics["headline_metric"]
    multi = len(metrics["settings"]) > 1
    bars: list[Figure] = []
    scatters: list[Figure] = []
    for s in metrics["settings"]:
        ev = s["evaluation"]
        arms = {a["input"]: a for a in ev.get("arms", [])}
        where = f" · {s['label']}" if multi else ""
        for comp in ev.get("comparisons", []):
            if len(bars) >= MAX_BAR_PLOTS:
                break
            b, t = arms.get(comp["base"]), arms.get(comp["tuned"])
            if b is None or t is None:
                continue
            langs = [lang for lang in b["languages"] if lang in t["per_language"]]
            base = [b["per_language"][lang]["metrics"].get(headline) for lang in langs] + [b["average"].get(headline)]
            tuned = [t["per_language"][lang]["metrics"].get(headline) for lang in langs] + [t["average"].get(headline)]
            title = f"{label(headline)}: {comp['model_id']} on {comp['prompt_set']}{where} (95% bootstrap CI)"
            png = plots.before_after_bars(langs + ["avg"], base, tuned, headline, title,
                                          tuned_label=ev.get("training_method") or "tuned")
            bars.append(Figure(f"plots/bars-{_slug(str(s['index']), comp['model_id'], comp['prompt_set'])}.png",
                               title, png))
            # beside toxicity: did the tuned model stay in the prompt's language?
            lc = LANGUAGE_METRIC
            base = [b["per_language"][lang]["metrics"].get(lc) for lang in langs] + [b["average"].get(lc)]
            tuned = [t["per_language"][lang]["metrics"].get(lc) for lang in langs] + [t["average"].get(lc)]
            if any(v and v.get("value") is not None for v in base + tuned):
                title = f"{label(lc)}: {comp['model_id']} on {comp['prompt_set']}{where} (95% bootstrap CI)"
                png = plots.before_after_bars(langs + ["avg"], base, tuned, lc, title,
                                              tuned_label=ev.get("training_method") or "tuned")
                bars.append(Figure(f"plots/language-{_slug(str(s['index']), comp['model_id'], comp['prompt_set'])}"
                                   ".png", title, png))
        for model, al in (ev.get("alignment") or {}).items():
            for corr in al.get("correlations", []):
                if len(scatters) >= MAX_SCATTER_PLOTS:
                    break
                points = {lang: {**v, "change": corr["relative_reduction"].get(lang)}
                          for lang, v in al["per_language"].items()}
                title = (f"Alignment with {al['pivot']} vs detoxification: {model} ({al['arm']} model) "
                         f"on {corr['prompt_set']}{where}")
                png = plots.alignment_scatter(points, {"retrieval_accuracy": corr["retrieval_accuracy"],
                                                       "paired_cosine": corr["paired_cosine"]}, headline, title)
                scatters.append(Figure(f"plots/alignment-{_slug(str(s['index']), model, corr['prompt_set'])}.png",
                                       title, png))
    heats: list[Figure] = []
    for h in heatmap_tables(metrics)[:MAX_HEATMAPS]:
        extra = f" ({h['other']})" if h["other"] else ""
        title = f"Relative change of {label(headline, short=True)}: {h['model_id']} on {h['prompt_set']}{extra}"
        png = plots.heatmap(h["rows"], h["cols"], h["values"], title,
                            f"relative change of {label(headline, short=True)} (%), tuned vs base",
                            detected=h["detected"])
        heats.append(Figure(f"plots/heatmap-{_slug(h['model_id'], h['prompt_set'], h['other'])}.png", title, png))
    return {"bars": bars, "heatmaps": heats, "alignment": scatters}


def build_report(params: dict[str, Any], evaluations: list[dict[str, Any]]) -> dict[str, bytes]:
    """All report files: ``{relative path: bytes}`` (metrics.json, report.md, report.html, plots/*.png)."""
    from xdetox.report.render import render_html, render_markdown

    metrics = report_metrics(params, evaluations)
    figs = figures(metrics)
    files: dict[str, bytes] = {
        "metrics.json": (json.dumps(metrics, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode(),
        "report.md": render_markdown(metrics, figs).encode("utf-8"),
        "report.html": render_html(metrics, figs).encode("utf-8"),
    }
    for group in figs.values():
        for f in group:
            files[f.path] = f.png
    return files
