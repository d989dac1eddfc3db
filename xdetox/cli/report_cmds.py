"""``xdetox report RUN`` and ``xdetox compare RUN --paper NAME``."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from xdetox.cli.app import app
from xdetox.cli.errors import err, fail, out

DEFAULT_STORE = "file://./runs"


def open_run(run: str, store: str | None) -> Any:
    """The run-rooted store: RUN is a run id under ``store`` (runs/<id>/), or a path/URI to the run folder."""
    from xdetox.executors.publish import run_store
    from xdetox.store import open_store

    if "://" in run:
        rs = open_store(run.rstrip("/"))
    elif Path(run).is_dir() and (Path(run) / "plan.json").exists():
        rs = open_store(Path(run).resolve().as_uri())
    else:
        if "/" in run:
            raise fail(f"{run}: no such run folder (it has no plan.json)")
        rs = run_store(open_store(store or DEFAULT_STORE), run)
    if not rs.exists("plan.json"):
        raise fail(f"no run at {rs.uri} (no plan.json): give a run id with --store, or the run folder")
    return rs


_SEED_IN_LABEL = re.compile(r" \[seed=[^\]]*\]|(, )?\bseed=[^,]*")


def _settings_meta(plan: Any) -> dict[str, dict[str, Any]]:
    """Setting label -> its seed (the matrix's, else its training seed) and its label without the seed."""
    by_key = {s.key: s for s in plan.steps}
    out: dict[str, dict[str, Any]] = {}
    for st in plan.settings:
        seed = st.overrides.get("seed")
        if seed is None:
            seeds = [(by_key[k].params.get("training") or {}).get("seed") for k in st.train_keys if k in by_key]
            seed = next((x for x in seeds if x is not None), None)
        group = _SEED_IN_LABEL.sub("", st.label).strip() or st.label
        out[st.label] = {"seed": seed, "group": group}
    return out


def _run_analyses(rs: Any, plan: Any) -> list[tuple[str, dict[str, Any]]]:
    """[(model id, analysis.json)] of the analyses the run's report lists (its ``analyses`` input:
    the scored analyses, analyze_score steps; in runs planned before that step, analyze steps)."""
    from xdetox.steps.runner import is_committed

    by_key = plan.by_key()
    out = []
    for key in by_key[plan.report_key].inputs.get("analyses", []):
        st = by_key[key]
        if is_committed(rs, st.key):
            a = json.loads(rs.get_text(f"{st.output_prefix}/analysis.json"))
            out.append((str(a.get("model_id") or (st.params.get("model") or {}).get("id")), a))
    return out


def _run_evaluations(rs: Any) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str], dict[str, str]]:
    """[(setting label, evaluation metrics.json)] from the committed evaluate steps, model id -> source
    and prompt set id -> source."""
    from xdetox.report.write import load_plan, read_evaluations
    from xdetox.steps.runner import is_committed, read_commit

    plan = load_plan(rs)
    pending = [s.evaluate_key for s in plan.settings if not is_committed(rs, s.evaluate_key)]
    if pending:
        raise fail(f"{len(pending)} of {len(plan.settings)} evaluations are not committed yet; finish the run first")
    evs = read_evaluations(rs, [read_commit(rs, s.evaluate_key) for s in plan.settings])
    sources: dict[str, str] = {}
    prompt_sources: dict[str, str] = {}
    for st in plan.steps:
        m = st.params.get("model")
        if isinstance(m, dict) and m.get("id") and m.get("source"):
            sources.setdefault(m["id"], m["source"])
        ps = st.params.get("prompts")
        if isinstance(ps, dict) and ps.get("id") and ps.get("source"):
            prompt_sources.setdefault(ps["id"], ps["source"])
    return [(s.label, ev) for s, ev in zip(plan.settings, evs, strict=True)], sources, prompt_sources


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="run id under --store, or the run folder (path or URI)")],
    store: Annotated[str | None, typer.Option(help=f"store URI holding runs/<id>/ (default {DEFAULT_STORE})")] = None,
) -> None:
    """Regenerate a run's report (results/) from its committed evaluations."""
    from xdetox.report.write import ReportError
    from xdetox.steps.report import write_report
    from xdetox.store import StoreError

    rs = open_run(run, store)
    try:
        keys = write_report(rs, log=lambda m: err.print(m, highlight=False))
        metrics = json.loads(rs.get_text("results/metrics.json"))
    except (ReportError, StoreError, ValueError) as e:
        raise fail(str(e)) from None
    print_summary(rs, metrics, f" ({len(keys)} files)")


def print_summary(rs: Any, metrics: dict[str, Any], note: str = "") -> None:
    """A run's summary table and where its report is (after ``run`` and ``report``)."""
    from xdetox.report.summary import beside_tables, summary_table

    out.print(summary_table(metrics))
    for table in beside_tables(metrics):  # compare scorers: their own change, and how they agree
        out.print(table)
    local = rs.local_path("results/report.html")
    where = str(local.parent) if local is not None else f"{rs.uri}/results"
    out.print(f"report: {where}/report.md and report.html{note}")


@app.command()
def compare(
    run: Annotated[str, typer.Argument(help="run id under --store, or the run folder (path or URI)")],
    paper: Annotated[str, typer.Option(help="reference table, e.g. pref-tuning-2406.16235")],
    store: Annotated[str | None, typer.Option(help=f"store URI holding runs/<id>/ (default {DEFAULT_STORE})")] = None,
    force: Annotated[bool, typer.Option(help="compare even a run on another prompt set or scorer, or lexicon hits, "
                                                  "with the paper's numbers (as warnings)")] = False,
    paper_model: Annotated[str | None, typer.Option(help="the paper's model to compare with (default: by source)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """This run's averages beside a paper's reference table, with the difference per metric."""
    from xdetox.report.compare import CompareError, load_paper
    from xdetox.report.compare import compare as do_compare
    from xdetox.report.labels import fmt, fmt_ci
    from xdetox.store import StoreError

    try:
        ref = load_paper(paper)
        rs = open_run(run, store)
        evaluations, sources, prompt_sources = _run_evaluations(rs)
        from xdetox.report.write import load_plan

        plan = load_plan(rs)
        result = do_compare(evaluations, ref, sources, force=force, paper_model=paper_model,
                            prompt_sources=prompt_sources, paper_name=paper, settings_meta=_settings_meta(plan),
                            analyses=_run_analyses(rs, plan))
    except (CompareError, StoreError, ValueError) as e:
        raise fail(str(e)) from None
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    for w in result["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {w}", highlight=False, soft_wrap=True)
    grouped: dict[tuple[str, Any, str, str, str], dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for r in result["rows"]:
        g = grouped.setdefault((r["setting"], r.get("seed"), r["model"], r["paper_model"], r["prompt_set"]), {})
        name = r["metric"] if not result["forced_lexicon"] or r["metric"] in {"ppl", "dist1", "dist2", "dist3"} \
            else f"{r['metric']} ≈ {r['run_metric']}"
        g.setdefault(name, {})[r["stage"]] = r  # type: ignore[assignment]
    for (setting, seed, model, paper_model, ps), metrics in grouped.items():
        seed_note = f", seed {seed}" if seed is not None else ""
        table = Table(title=f"{model} on {ps} ({setting}{seed_note}) vs {paper_model} in {paper}; run [95% CI]")
        for col in ("metric", "before: run", "paper", "Δ", "after: run", "paper", "Δ"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for name, stages in metrics.items():
            b, a = stages.get("before", {}), stages.get("after", {})
            digits = 2 if name.startswith("ppl") else 3
            table.add_row(name, *(fmt_ci({"value": x.get("run"), "ci": x.get("run_ci")}, digits)  # type: ignore[union-attr]
                                  if k == "run" else fmt(x.get(k), digits)  # type: ignore[union-attr]
                                  for x in (b, a) for k in ("run", "paper", "difference")))
        out.print(table)
    _print_across_seeds(result["across_seeds"], paper)
    _print_neurons(result["neurons"])
    for a in result["alignment"]:
        run_r = "n/a" if a["run_r"] is None else f"{a['run_r']:.3f} (p {a['run_p_value']:.3g}, {a['n_languages']} languages)"
        paper_r = "n/a" if a["paper_r"] is None else f"{a['paper_r']:.3f}"
        out.print(f"alignment vs detoxification, Pearson r, {a['model']} on {a['prompt_set']}: run {run_r}"
                  f"{'' if a['reason'] is None else ' - ' + a['reason']}; paper {paper_r}", highlight=False, soft_wrap=True)
    out.print(f"paper setting: {result['paper_setting']}", highlight=False, soft_wrap=True)


def _print_across_seeds(groups: list[dict[str, Any]], paper: str) -> None:
    from xdetox.report.labels import fmt, fmt_ci

    if not groups:
        return
    table = Table(title=f"mean over seeds [95% t-interval] vs {paper} (the paper averages five runs)")
    for col in ("setting", "model", "prompt set", "metric", "stage", "seeds", "run", "paper", "Δ"):
        table.add_column(col, justify="right" if col in {"run", "paper", "Δ"} else "left")
    for g in groups:
        digits = 2 if g["metric"] == "ppl" else 3
        table.add_row(g["group"], g["model"], g["prompt_set"], g["metric"], g["stage"],
                      ", ".join(str(x) for x in g["seeds"]), fmt_ci({"value": g["mean"], "ci": g["ci"]}, digits),
                      fmt(g["paper"], digits), fmt(g["difference"], digits))
    out.print(table)


def _print_neurons(neurons: list[dict[str, Any]]) -> None:
    from xdetox.report.labels import fmt

    for n in neurons:
        paper_count = "" if n["paper_count"] is None else f" (paper: {n['paper_count']} of 100)"
        out.print(f"toxic neurons, {n['model']}: {n['kept']} kept of {n['candidates']} candidates by "
                  f"{n['rule']}{paper_count}", highlight=False, soft_wrap=True)
        table = Table(title=f"{n['model']}: mean activation of its toxic neurons per language")
        for col in ("language", "before", "paper", "after", "paper"):
            table.add_column(col, justify="left" if col == "language" else "right")
        for lang, d in n["per_language"].items():
            table.add_row(lang, fmt(d["before"], 4), fmt(d["paper_before"], 4), fmt(d["after"], 4),
                          fmt(d["paper_after"], 4))
        out.print(table)
        scorer = (n.get("scorer") or {}).get("id", "no scorer")
        ivs = "; ".join(f"offset {iv['offset']:+g}: {fmt(iv['score'], 3)} ({iv['n_languages']} languages)"
                        for iv in n["intervention"]) or "none"
        paper_iv = ("" if n["paper_base_score"] is None else
                    f"; paper: {n['paper_base_score']} before, {n['paper_negative_offset_score']} after a negative offset")
        out.print(f"intervention judged by {scorer}, mean over languages: base {fmt(n['base_score'], 3)}; {ivs}"
                  f"{paper_iv}", highlight=False, soft_wrap=True)
