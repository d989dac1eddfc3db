"""``xdetox compare``: a run's averages beside a paper's reference table, difference per metric.

Only paper 1's Table 2 is bundled (xdetox/data/paper-reference/). Its toxicity numbers are
Perspective API probabilities averaged over 17 RTP-LX languages: a lexicon run is refused (hits
are not probabilities) unless forced, and a classifier run is compared with a warning.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from xdetox.kinds import scorers as scorer_kinds

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "paper-reference"
PAPERS = {"pref-tuning-2406.16235": "pref-tuning-2406.16235-table2.json"}
#: paper column -> (run metric, run metric when the scorer is the lexicon, forced)
COLUMNS: list[tuple[str, str, str | None]] = [
    ("emt", "expected_maximum_toxicity", None),
    ("tox_prob", "toxicity_probability", "lexicon_prompt_hit_share"),
    ("avg_tox", "average_toxicity", "lexicon_hit_rate"),
    ("ppl", "perplexity_median", "perplexity_median"),
    ("dist1", "dist1", "dist1"),
    ("dist2", "dist2", "dist2"),
    ("dist3", "dist3", "dist3"),
    # not in the paper (its value is None): shown so a toxicity drop read against the paper can be
    # checked for drifting out of the prompt's language
    ("lang_consistency", "language_consistency", "language_consistency"),
]


#: what each paper's numbers were measured on: a run on anything else is refused unless forced
PAPER_RUN: dict[str, dict[str, str]] = {
    # Table 2: RTP-LX v0.2 prompts in 17 languages, scored by Perspective API TOXICITY
    "pref-tuning-2406.16235": {"prompt_source": "rtp-lx", "prompts": "RTP-LX (17 languages)",
                               "scorer": "perspective", "scorer_name": "Perspective API TOXICITY"},
}


class CompareError(ValueError):
    """The comparison cannot be made (unknown paper, lexicon scores without --force, no model match)."""


def load_paper(name: str) -> dict[str, Any]:
    if name not in PAPERS:
        raise CompareError(f"unknown paper {name!r}; available: {', '.join(sorted(PAPERS))}")
    return json.loads((DATA_DIR / PAPERS[name]).read_text(encoding="utf-8"))


def lexicon_refusal(scorer_kind: str) -> str:
    return (f"this run was scored with the {scorer_kind} scorer: its numbers are lexicon hit rates, not "
            "Perspective API toxicity probabilities, so they cannot be compared with the paper's expected "
            "maximum toxicity or toxicity probability. Re-score with a probability scorer (perspective, or a "
            "classifier), or pass --force to print them side by side anyway (lexicon prompt-hit share beside "
            "toxicity probability, hit rate beside average toxicity; no EMT).")


def _comparable(scorer_kind: str) -> bool:
    """Whether the scorer kind declares its numbers on the papers' scale (an unknown kind does not)."""
    kind = scorer_kinds.find(scorer_kind)
    return kind is not None and kind.comparable_with_papers


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", s.lower().rsplit("/", 1)[-1])


def match_paper_model(model_id: str, source: str | None, paper: dict[str, Any], explicit: str | None = None) -> str | None:
    names = sorted({r["model"] for r in paper["rows"]})
    if explicit:
        for n in names:
            if explicit.lower() in {n.lower(), _norm(n)} or _norm(explicit) == _norm(n):
                return n
        raise CompareError(f"--paper-model {explicit!r} is not in the paper's table; it has: {', '.join(names)}")
    for n in names:
        if source and source.lower().rstrip("/") == n.lower():
            return n
    for n in names:
        if _norm(model_id) == _norm(n) or (source and _norm(source) == _norm(n)):
            return n
    return None


def compare(
    evaluations: list[tuple[str, dict[str, Any]]],
    paper: dict[str, Any],
    model_sources: dict[str, str] | None = None,
    force: bool = False,
    paper_model: str | None = None,
    prompt_sources: dict[str, str] | None = None,
    paper_name: str = "pref-tuning-2406.16235",
    settings_meta: dict[str, dict[str, Any]] | None = None,
    analyses: list[tuple[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Rows of (setting, seed, model, prompt set, metric, stage, run with its CI, paper, difference)
    for every base/tuned comparison in the run's evaluations ``[(setting label, metrics.json)]``;
    the mean over seeds with a t-interval where a setting ran under several seeds (paper 1 reports
    five-run averages); the alignment correlation and the toxic-neuron results beside the paper's.
    ``prompt_sources``: prompt set id -> its source; ``settings_meta``: setting label -> {"seed",
    "group": the label without its seed}; ``analyses``: [(model id, analysis.json)]."""
    model_sources = model_sources or {}
    settings_meta = settings_meta or {}
    prompt_sources = prompt_sources or {}
    kinds = {ev.get("score_kind") for _, ev in evaluations}
    lexicon = "hits" in kinds
    scorer_kind = next((ev.get("scorer_kind") for _, ev in evaluations if ev.get("scorer_kind")), "")
    if lexicon and not force:
        raise CompareError(lexicon_refusal(scorer_kind or "hits"))
    warnings: list[str] = []
    need = PAPER_RUN.get(paper_name)
    if need:
        warnings.extend(_check_setup(evaluations, need, prompt_sources, scorer_kind, lexicon, force))
    if lexicon:
        warnings.append("FORCED: lexicon hit rates are shown beside Perspective probabilities; the differences "
                        "in the toxicity rows do not measure the same thing.")
    elif scorer_kind and not _comparable(scorer_kind):
        warnings.append(f"scorer is {scorer_kind}, not Perspective API: toxicity differences include the "
                        "difference between scorers.")
    warnings.append("dist-n: the paper counts mT5 tokenizer pieces, xdetox whitespace words (characters for zh/ja); "
                    "PPL: the paper's reference model is google/mt5-xl. Compare their trends, not their digits. "
                    "lang_consistency (share of continuations in the prompt's language) is this run's only: "
                    "the paper does not report it.")
    paper_langs = paper.get("languages", [])
    rows: list[dict[str, Any]] = []
    unmatched: list[str] = []
    for setting, ev in evaluations:
        arms = {a["input"]: a for a in ev.get("arms", [])}
        for comp in ev.get("comparisons", []):
            model = comp["model_id"]
            name = match_paper_model(model, model_sources.get(model), paper, paper_model)
            if name is None:
                unmatched.append(model)
                continue
            ref = {r["stage"]: r for r in paper["rows"] if r["model"] == name}
            langs = comp.get("languages") or list(comp["per_language"])
            missing = sorted(set(paper_langs) - set(langs))
            if missing:
                warnings.append(f"{model} on {comp['prompt_set']}: the run averages {len(langs)} languages, the paper "
                                f"{len(paper_langs)} (not in the run: {', '.join(missing)})")
            for col, metric, lex_metric in COLUMNS:
                run_metric = lex_metric if lexicon else metric
                if run_metric is None:
                    continue
                for stage, arm_input in (("before", comp["base"]), ("after", comp["tuned"])):
                    arm = arms.get(arm_input) or {}
                    avg = arm.get("average", {}).get(run_metric) or {}
                    value = avg.get("value")
                    pv = ref.get(stage, {}).get(col)
                    rows.append({"setting": setting, "seed": settings_meta.get(setting, {}).get("seed"),
                                 "model": model, "paper_model": name,
                                 "prompt_set": comp["prompt_set"], "metric": col, "run_metric": run_metric,
                                 "stage": stage, "run": value, "run_ci": avg.get("ci"), "paper": pv,
                                 "difference": None if value is None or pv is None else value - pv})
    if unmatched and not rows:
        names = sorted({r["model"] for r in paper["rows"]})
        raise CompareError(f"no model of this run ({', '.join(sorted(set(unmatched)))}) is in the paper's table "
                           f"({', '.join(names)}); name one with --paper-model")
    if unmatched:
        warnings.append(f"not in the paper's table, skipped: {', '.join(sorted(set(unmatched)))}")
    return {"paper": paper.get("source"), "paper_setting": paper.get("setting"), "rows": rows,
            "across_seeds": across_seeds(rows, settings_meta),
            "alignment": _alignment_rows(evaluations, paper, model_sources, paper_model),
            "neurons": _neuron_rows(analyses or [], paper, model_sources, paper_model),
            "warnings": list(dict.fromkeys(warnings)), "forced_lexicon": lexicon}


def across_seeds(rows: list[dict[str, Any]], settings_meta: dict[str, dict[str, Any]],
                 confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per setting group (the setting without its seed), model, prompt set, metric and stage that
    ran under two or more seeds: the mean over seeds, its sample SD and a Student-t interval of the
    mean (seeds are the unit: each seed's own bootstrap CI is within-run noise), beside the paper's
    five-run average."""
    import math

    from scipy import stats

    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        meta = settings_meta.get(r["setting"], {})
        if r["run"] is None or meta.get("seed") is None:
            continue
        key = (meta.get("group", r["setting"]), r["model"], r["paper_model"], r["prompt_set"], r["metric"], r["stage"])
        g = groups.setdefault(key, {"values": {}, "paper": r["paper"]})
        g["values"][meta["seed"]] = r["run"]
    out: list[dict[str, Any]] = []
    for (group, model, paper_model, ps, metric, stage), g in groups.items():
        seeds = sorted(g["values"])
        if len(seeds) < 2:
            continue
        vals = [g["values"][x] for x in seeds]
        n = len(vals)
        mean = sum(vals) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        out.append({"group": group, "model": model, "paper_model": paper_model, "prompt_set": ps, "metric": metric,
                    "stage": stage, "seeds": seeds, "n_seeds": n, "mean": mean, "sd": sd,
                    "ci": [mean - half, mean + half], "confidence": confidence, "paper": g["paper"],
                    "difference": None if g["paper"] is None else mean - g["paper"]})
    return out


NEURON_ACTIVATIONS = "neuron-activations.json"
MGPT = "ai-forever/mGPT"


def _neuron_rows(analyses: list[tuple[str, dict[str, Any]]], paper: dict[str, Any], model_sources: dict[str, str],
                 paper_model: str | None) -> list[dict[str, Any]]:
    """Per analysed model: how many toxic neurons its selection kept (paper 1: 36 of 100 for mGPT),
    their mean activation per language before and after tuning beside mGPT's published ones, and
    the run's scorer on the intervention's continuations at each offset, averaged over languages,
    beside the paper's (0.175 before, 0.032 after a negative offset, mGPT, 17 languages)."""
    ref = paper.get("toxic_neurons_mgpt") or {}
    acts_file = DATA_DIR / NEURON_ACTIVATIONS
    acts = json.loads(acts_file.read_text(encoding="utf-8")) if acts_file.exists() else {}
    out: list[dict[str, Any]] = []
    for model, a in analyses:
        try:
            name = match_paper_model(model, model_sources.get(model), paper, paper_model)
        except CompareError:
            name = None
        is_mgpt = name == MGPT
        langs = a.get("languages") or {}
        per_language = {}
        for lang, d in sorted(langs.items()):
            per_language[lang] = {
                "before": (d.get("base") or {}).get("mean"), "after": (d.get("tuned") or {}).get("mean"),
                "paper_before": (acts.get("pre_dpo") or {}).get(lang) if is_mgpt else None,
                "paper_after": (acts.get("post_dpo") or {}).get(lang) if is_mgpt else None,
            }
        base_scores = [(d.get("base_score") or {}).get("mean") for d in langs.values()]
        interventions: dict[float, list[float]] = {}
        for d in langs.values():
            runs = d.get("intervention") or []
            for iv in runs if isinstance(runs, list) else [runs]:
                v = (iv.get("score") or {}).get("mean")
                if v is not None:
                    interventions.setdefault(float(iv["offset"]), []).append(v)
        present = [v for v in base_scores if v is not None]
        selection = a.get("selection") or {}
        out.append({
            "model": model, "paper_model": name, "kept": len(a.get("neurons") or []),
            "candidates": selection.get("candidates"), "rule": selection.get("rule"),
            "paper_count": ref.get("count") if is_mgpt else None,
            "per_language": per_language,
            "spearman_before": (a.get("reference_comparison") or {}).get("spearman_before"),
            "spearman_after": (a.get("reference_comparison") or {}).get("spearman_after"),
            "scorer": a.get("scorer"),
            "base_score": sum(present) / len(present) if present else None,
            "intervention": [{"offset": off, "score": sum(v) / len(v), "n_languages": len(v)}
                             for off, v in sorted(interventions.items())],
            "paper_base_score": ref.get("avg_toxicity_17_langs_greedy_before_intervention") if is_mgpt else None,
            "paper_negative_offset_score": ref.get("after_negative_offset") if is_mgpt else None,
        })
    return out


def _check_setup(evaluations: list[tuple[str, dict[str, Any]]], need: dict[str, str], prompt_sources: dict[str, str],
                 scorer_kind: str, lexicon: bool, force: bool) -> list[str]:
    """Refuse (CompareError) a run whose prompt set or scorer is not the paper's, naming both; with
    ``force``, the same facts come back as warnings."""
    problems: list[str] = []
    notes: list[str] = []
    for ps in sorted({c["prompt_set"] for _, ev in evaluations for c in ev.get("comparisons", [])}):
        src = prompt_sources.get(ps)
        if src is None:
            notes.append(f"prompt set {ps!r}: its source is not in the plan, so it cannot be checked against the "
                         f"paper's {need['prompts']}")
        elif src.split(":", 1)[0] != need["prompt_source"]:
            problems.append(f"prompt set {ps!r} comes from {src}; the paper's numbers are on {need['prompts']}")
    if scorer_kind and not lexicon and scorer_kind != need["scorer"]:
        problems.append(f"this run was scored by {scorer_kind}; the paper's by {need['scorer_name']}")
    if problems and not force:
        raise CompareError("not the paper's setup: " + "; ".join(problems)
                           + ". Rerun with the paper's prompt set and scorer, or pass --force to compare anyway.")
    return notes + [f"FORCED: {p}" for p in problems]


def _alignment_rows(evaluations: list[tuple[str, dict[str, Any]]], paper: dict[str, Any],
                    model_sources: dict[str, str], paper_model: str | None) -> list[dict[str, Any]]:
    """Per model and prompt set: the run's Pearson r (paired cosine vs relative reduction) beside the paper's."""
    ref = paper.get("retrieval_vs_emt_change_pearson_r") or {}
    out: list[dict[str, Any]] = []
    for setting, ev in evaluations:
        for model, entry in (ev.get("alignment") or {}).items():
            try:
                name = match_paper_model(model, model_sources.get(model), paper, paper_model)
            except CompareError:
                name = None
            for corr in entry.get("correlations", []):
                pc = corr.get("paired_cosine") or {}
                out.append({"setting": setting, "model": model, "paper_model": name, "prompt_set": corr.get("prompt_set"),
                            "run_r": pc.get("r"), "run_p_value": pc.get("p_value"), "n_languages": pc.get("n"),
                            "reason": pc.get("reason"), "paper_r": ref.get(name) if name else None})
    return out
