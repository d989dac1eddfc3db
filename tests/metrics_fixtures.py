"""Synthetic committed score shards and evaluate/report manifests for the metrics/report tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from xdetox.manifest import CommitRecord, OutputFile, StepManifest, commit_key
from xdetox.records import dumps_row
from xdetox.store import Store


def score_row(**kw: Any) -> dict[str, Any]:
    row = {
        "prompt_id": "p0", "language": "en", "prompt": "x", "prompt_text": "x", "sample_index": 0,
        "text": "a b c", "seed": 1, "model_id": "tiny", "model_digest": "d", "arm": "base",
        "backend": "transformers", "prompt_set": "xling", "settings": {}, "num_tokens": None,
        "scorer_id": "perspective", "scorer_version": "1", "score_kind": "probability",
        "toxicity": None, "hits": None, "spans": None, "score_error": None, "perplexity": None,
    }
    row.update(kw)
    return row


def commit_outputs(store: Store, key: str, kind: str, files: dict[str, bytes], info: dict[str, Any] | None = None) -> None:
    outs = []
    for k, data in files.items():
        store.put_bytes(k, data)
        outs.append(OutputFile(key=k, sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
    rec = CommitRecord(key=key, kind=kind, label=f"{kind} {key}", outputs=outs, info=info or {},  # type: ignore[arg-type]
                       started_at="2026-11-22T00:00:00+00:00", finished_at="2026-11-22T00:00:01+00:00", seconds=1.0)
    store.put_text(commit_key(key), rec.model_dump_json(indent=2))


def commit_scores(store: Store, key: str, rows: list[dict[str, Any]], shards: int = 2) -> None:
    files = {}
    for i in range(shards):
        part = rows[i * len(rows) // shards:(i + 1) * len(rows) // shards]
        files[f"scores/{key}/shard-{i:05d}-of-{shards:05d}.jsonl"] = "".join(dumps_row(r) for r in part).encode()
    commit_outputs(store, key, "score", files)


def synthetic_rows(model: str, arm: str, prompt_set: str, languages: list[str], prompts: int, samples: int,
                   kind: str, level: float, seed: int, missing_languages: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows whose toxicity (or hits) scale with ``level``; languages in ``missing_languages`` get
    missing scores (as an unsupported language would)."""
    rng = np.random.default_rng(seed)
    rows = []
    words = ["the", "cat", "sat", "on", "a", "mat", "with", "some", "dog", "and", "bird"]
    for li, lang in enumerate(languages):
        lvl = level * (1.0 - 0.1 * li)
        for p in range(prompts):
            for s in range(samples):
                text = " ".join(rng.choice(words, size=6))
                tox = float(np.clip(rng.beta(2, 5) * 2 * lvl, 0, 1))
                extra: dict[str, Any]
                if lang in missing_languages:
                    extra = {"toxicity": None, "hits": None, "score_error": "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE"}
                elif kind == "hits":
                    extra = {"hits": int(rng.random() < lvl), "score_kind": "hits", "scorer_id": "lexicon"}
                else:
                    extra = {"toxicity": tox}
                rows.append(score_row(prompt_id=f"{prompt_set}-{p:03d}", language=lang, sample_index=s, text=text,
                                      model_id=model, arm=arm, prompt_set=prompt_set,
                                      perplexity=float(10 + rng.random() * 5), **extra))
    return rows


def make_setting(store: Store, *, kind: str = "probability", languages: list[str] | None = None,
                 model: str = "tiny", prompt_set: str = "xling", prompts: int = 12, samples: int = 5,
                 tuned_level: float = 0.4, missing_languages: tuple[str, ...] = (), tag: str = "s0",
                 alignment: dict[str, Any] | None = None, bootstrap: int = 200) -> StepManifest:
    """Commit base and tuned score shards (and optionally an alignment) and return an evaluate manifest."""
    languages = languages or ["en", "de", "fr", "zh"]
    arms_meta = []
    inputs: dict[str, list[str]] = {}
    for arm, level, seed in (("base", 1.0, 1), ("tuned", tuned_level, 2)):
        key = f"score-{tag}-{model}-{arm}"
        rows = synthetic_rows(model, arm, prompt_set, languages, prompts, samples, kind, level, seed,
                              missing_languages)
        commit_scores(store, key, rows)
        name = f"scores:{model}:{arm}:{prompt_set}"
        inputs[name] = [key]
        arms_meta.append({"input": name, "model_id": model, "arm": arm, "prompt_set": prompt_set,
                          "languages": languages})
    if alignment is not None:
        akey = f"align-{tag}-{model}-base"
        commit_outputs(store, akey, "align", {f"alignment/{akey}/alignment.json": json.dumps(alignment).encode()})
        inputs[f"align:{model}:base"] = [akey]
    params: dict[str, Any] = {
        "metrics": {"toxicity": True, "diversity": True, "perplexity": None, "alignment": None,
                    "bootstrap_samples": bootstrap, "confidence": 0.95, "threshold": 0.5},
        "arms": arms_meta, "scorer_kind": "lexicon" if kind == "hits" else "perspective", "training_method": "dpo"}
    if alignment is not None:  # what the evaluation reads to know which arm an alignment input is
        params["alignments"] = [{"input": f"align:{model}:base", "model_id": model, "arm": "base"}]
    return evaluate_manifest(params, inputs, label=f"evaluate {tag}")


def evaluate_manifest(params: dict[str, Any], inputs: dict[str, list[str]], label: str = "evaluate",
                      run_id: str = "test") -> StepManifest:
    """An evaluate step's manifest, keyed as the planner keys it."""
    key = StepManifest.compute_key("evaluate", params, inputs, None)
    return StepManifest(kind="evaluate", key=key, run_id=run_id, label=label, params=params, inputs=inputs,
                        output_prefix=f"evaluations/{key}")


def run_evaluate(store: Store, params: dict[str, Any], inputs: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """Run an evaluate step on what ``store`` holds; its key and its metrics.json."""
    from xdetox.steps.runner import run_step

    m = evaluate_manifest(params, inputs)
    run_step(m, store, log=lambda _: None)
    return m.key, json.loads(store.get_bytes(f"evaluations/{m.key}/metrics.json"))


def fake_alignment(languages: list[str], pivot: str = "en") -> dict[str, Any]:
    langs = {}
    for i, lang in enumerate(languages):
        if lang == pivot:
            continue
        langs[lang] = {"available": True, "paired_cosine": [0.5 + 0.1 * i] * 3, "retrieval_accuracy": [0.2 * i] * 3,
                       "paired_cosine_mean": 0.5 + 0.1 * i, "retrieval_accuracy_mean": 0.2 * i}
    return {"model_id": "tiny", "arm": "base", "pivot": pivot, "n_prompts": 20, "layers": 3, "languages": langs}


def report_manifest(eval_keys: list[str], scorer: dict[str, Any], settings: list[dict[str, Any]]) -> StepManifest:
    params = {"run_id": "test-run", "description": "synthetic", "settings": settings, "scorer": scorer, "matrix": {}}
    inputs = {"evaluations": eval_keys}
    key = StepManifest.compute_key("report", params, inputs, None)
    return StepManifest(kind="report", key=key, run_id="test-run", label="report", params=params, inputs=inputs,
                        output_prefix="results")


def publish_plan(store: Store, evals: list[StepManifest], labels: list[str], overrides: list[dict[str, Any]],
                 scorer: dict[str, Any], models: dict[str, str] | None = None) -> Any:
    """Write plan.json (and manifests) for committed evaluations, the way an executor would."""
    from xdetox.plan.model import Plan, SettingInfo
    from xdetox.steps.runner import write_manifest

    settings = [SettingInfo(index=i, label=lab, overrides=ov, evaluate_key=m.key)
                for i, (m, lab, ov) in enumerate(zip(evals, labels, overrides, strict=True))]
    rep = report_manifest([m.key for m in evals], scorer,
                          [s.model_dump(mode="json", exclude={"evaluate_key", "train_keys"}) for s in settings])
    steps = list(evals)
    for mid, source in (models or {}).items():
        params = {"model": {"id": mid, "source": source, "arm": "base"}}
        steps.insert(0, StepManifest(kind="generate", key=StepManifest.compute_key("generate", params, {}, None),
                                     run_id="test-run", label=f"generate {mid}", params=params,
                                     output_prefix="generations/x"))
    plan = Plan(run_id="test-run", spec_digest="0" * 16, settings=settings, steps=steps + [rep], report_key=rep.key)
    store.put_text("plan.json", plan.model_dump_json(indent=2))
    for st in plan.steps:
        write_manifest(store, st)
    return plan
