"""The ``perplexity`` step: one generate shard in, one perplexity shard out, in input order, under
the named reference or under the model that generated the rows; ``evaluate`` joins it to the scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import build_causal_lm, gen_row
from tests.test_score_step import SHARD, gen_rows, setup_run
from xdetox.manifest import CommitRecord, OutputFile, StepManifest, commit_key
from xdetox.records import GenerationRow, PerplexityRow, ScoreRow, read_jsonl
from xdetox.steps.evaluate import with_perplexity
from xdetox.steps.runner import run_step
from xdetox.store.base import Store


def ppl_step(tmp_path: Path, rows: list[GenerationRow], ppl: dict[str, Any]) -> tuple[Store, StepManifest]:
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"})
    params = {"perplexity": {"text": "continuation", **ppl}}
    return store, m.model_copy(update={
        "kind": "perplexity", "params": params, "output_prefix": "perplexity/p",
        "key": StepManifest.compute_key("perplexity", params, m.inputs, SHARD)})


def output_rows(store: Store, rec: CommitRecord) -> list[PerplexityRow]:
    assert [o.key for o in rec.outputs] == [f"perplexity/p/{SHARD.name()}.jsonl"]
    return list(read_jsonl(store.local_path(rec.outputs[0].key), PerplexityRow))


def test_continuation_perplexity_in_input_order(tmp_path: Path) -> None:
    ref = build_causal_lm(tmp_path / "ref")
    rows = gen_rows(6)  # row 2 is the empty continuation: no perplexity for it
    store, m = ppl_step(tmp_path, rows, {"reference": str(ref), "batch_size": 4})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    assert [(r.prompt_id, r.sample_index, r.language) for r in out] == [
        (r.prompt_id, r.sample_index, r.language) for r in rows]
    assert [r.perplexity is None for r in out] == [not r.text for r in rows]
    assert all(r.perplexity > 1.0 for r in out if r.perplexity is not None)
    assert rec.info["perplexity_missing_by_language"] == {"en": 1}
    assert rec.info["rows_by_language"] == {"en": 5, "xx": 1}
    from xdetox.scoring.perplexity import conditional_perplexity, load_reference

    model, tok = load_reference(str(ref), device="cpu")
    want = [conditional_perplexity(model, tok, [r.prompt_text], [r.text])[0] for r in rows]  # one at a time
    assert [r.perplexity for r in out if r.perplexity is not None] == pytest.approx(
        [w for w in want if w is not None], rel=1e-4)


def test_self_perplexity_of_the_prompt_text(tmp_path: Path) -> None:
    """reference 'self' + text 'prompt': each row's prompt scored under the generating model
    (paper 2's knowledge preservation), read from the step's ``model`` input."""
    model_dir = build_causal_lm(tmp_path / "gen-model", seed=3)
    rows = gen_rows(4)
    store, m = ppl_step(tmp_path, rows, {"reference": "self", "text": "prompt", "batch_size": 2})
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    outputs = []
    for p in files:  # the generating model is an upstream step's committed output
        key = f"models/m1/{p.relative_to(model_dir).as_posix()}"
        store.put_file(key, p)
        outputs.append(OutputFile(key=key, sha256=store.sha256(key), size=p.stat().st_size))
    store.put_text(commit_key("m1"), CommitRecord(key="m1", kind="train", label="m", outputs=outputs,
                                                  started_at="t", finished_at="t", seconds=0.0).model_dump_json())
    params = {**m.params, "model": {"id": "m", "source": "unused-hub-id", "arm": "tuned"}}
    inputs = {**m.inputs, "model": ["m1"]}
    m = m.model_copy(update={"params": params, "inputs": inputs,
                             "key": StepManifest.compute_key("perplexity", params, inputs, SHARD)})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    from xdetox.scoring.perplexity import conditional_perplexity, load_reference

    model, tok = load_reference(str(model_dir), device="cpu")
    want = conditional_perplexity(model, tok, [""] * len(rows), [r.prompt for r in rows])
    assert all(w is not None for w in want)
    assert [r.perplexity for r in out] == pytest.approx(want, rel=1e-5)  # also for the empty continuation
    other = load_reference(str(build_causal_lm(tmp_path / "other", seed=4)), device="cpu")
    assert [r.perplexity for r in out] != pytest.approx(
        conditional_perplexity(other[0], other[1], [""] * len(rows), [r.prompt for r in rows]), rel=1e-3)


def test_perplexity_of_the_completion_alone(tmp_path: Path) -> None:
    """text 'completion' (paper 2's knowledge preservation, their 6_perplexity_scores_*.py on
    model_completion): the generated text alone under the reference, computed here by hand from the
    model's logits after BOS; the empty continuation has none (missing, not 0)."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = build_causal_lm(tmp_path / "ref", seed=5)
    rows = gen_rows(3)
    store, m = ppl_step(tmp_path, rows, {"reference": str(model_dir), "text": "completion", "batch_size": 2})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    for row, got in zip(rows, out, strict=True):
        if not row.text:
            assert got.perplexity is None
            continue
        ids = [tok.bos_token_id] + tok(row.text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        nll = [-float(logp[i - 1, ids[i]]) for i in range(1, len(ids))]
        assert got.perplexity == pytest.approx(math.exp(sum(nll) / len(nll)), rel=1e-4)


def _score(prompt_id: str, sample: int) -> ScoreRow:
    g = gen_row("a text", "en", 0, prompt="p", sample_index=sample).model_copy(update={"prompt_id": prompt_id})
    return ScoreRow(**g.model_dump(), scorer_id="s", scorer_version="1", score_kind="probability", toxicity=0.2)


def test_evaluate_joins_perplexities_row_by_row_and_refuses_a_mismatch() -> None:
    scores = [_score("a", 0), _score("a", 1), _score("b", 0)]
    ppls = [PerplexityRow(prompt_id=p, language="en", sample_index=i, perplexity=v)
            for p, i, v in (("a", 0, 12.5), ("a", 1, None), ("b", 0, 40.0))]
    joined = list(with_perplexity(iter(scores), iter(ppls), "t"))
    assert [r.perplexity for r in joined] == [12.5, None, 40.0]
    assert [r.toxicity for r in joined] == [0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="row 2 is prompt 'a' sample 1 in the scores but prompt 'b' sample 0"):
        list(with_perplexity(iter(scores[:2]), iter([ppls[0], ppls[2]]), "t"))
    with pytest.raises(ValueError, match="differ in number"):
        list(with_perplexity(iter(scores), iter(ppls[:2]), "t"))
    assert [r.perplexity for r in with_perplexity(iter([_score("c", 0)]), None, "t")] == [None]


E2E_SPEC = """\
name: ppl-e2e
models: [{id: tiny, source: builtin:tiny}]
prompts: [{id: x, source: bundled:xling-prompts-200, languages: [en, de], limit_per_language: 3}]
generation: {samples: 2, max_new_tokens: 6, backend: transformers}
scoring: {kind: lexicon}
sharding: {generate: 2}
metrics: {perplexity: {reference: self}, bootstrap_samples: 20}
"""


@pytest.mark.slow  # ~2 min on a shared CPU: builds the tiny model, generates, loads lingua
def test_a_local_run_computes_perplexity_in_its_own_steps_and_evaluates_it(tmp_path: Path) -> None:
    import json
    import statistics

    from rich.console import Console

    from xdetox.executors.local import run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan
    from xdetox.spec import load_spec_text
    from xdetox.store import open_store

    p = plan(load_spec_text(E2E_SPEC))
    rs = run_store(open_store((tmp_path / "s").as_uri()), p.run_id)
    publish(p, rs, E2E_SPEC)
    run_plan(p, rs, console=Console(quiet=True), show_progress=False)
    ppl_steps = [s for s in p.steps if s.kind == "perplexity"]
    assert len(ppl_steps) == 2 and all(s.params["model"]["id"] == "tiny" for s in ppl_steps)
    values: dict[str, list[float]] = {"en": [], "de": []}
    for s in ppl_steps:
        rec = CommitRecord.model_validate_json(rs.get_text(commit_key(s.key)))
        for o in rec.outputs:
            for r in read_jsonl(rs.local_path(o.key), PerplexityRow):
                if r.perplexity is not None:
                    values[r.language].append(r.perplexity)
    for s in (s for s in p.steps if s.kind == "score"):  # score rows carry no perplexity any more
        rec = CommitRecord.model_validate_json(rs.get_text(commit_key(s.key)))
        assert all(r.perplexity is None for o in rec.outputs for r in read_jsonl(rs.local_path(o.key), ScoreRow))
    (ev,) = [s for s in p.steps if s.kind == "evaluate"]
    rec = CommitRecord.model_validate_json(rs.get_text(commit_key(ev.key)))
    (mkey,) = [o.key for o in rec.outputs if o.key.endswith("metrics.json")]
    (arm,) = json.loads(rs.get_bytes(mkey))["arms"]
    for lang in ("en", "de"):
        assert values[lang]  # 3 prompts x 2 samples each; the median over rows, as the evaluate step takes it
        got = arm["per_language"][lang]["metrics"]["perplexity_median"]["value"]
        assert got == pytest.approx(statistics.median(values[lang]), rel=1e-6)
