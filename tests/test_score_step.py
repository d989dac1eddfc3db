"""The ``score`` step: one generate shard in, one score shard out, streaming, resumable, honest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import FakePerspective, build_causal_lm, fake_score, gen_row
from xdetox.kinds import scorers as scorer_kinds
from xdetox.manifest import CommitRecord, OutputFile, Shard, StepManifest, commit_key
from xdetox.records import GenerationRow, ScoreRow, dumps_row, read_jsonl
from xdetox.steps.runner import is_committed, run_step
from xdetox.store import open_store
from xdetox.store.base import Store
from xdetox.store.partial import read_progress

SHARD = Shard(index=1, count=3)


def gen_rows(n: int) -> list[GenerationRow]:
    texts = ["you fucking idiot", "a calm sentence", "", "shit happens, man", "nothing here at all"]
    langs = ["en", "en", "en", "en", "xx"]
    return [gen_row(texts[i % 5], langs[i % 5], i, prompt=f"Prompt number {i}:", sample_index=i % 2)
            for i in range(n)]


def setup_run(tmp_path: Path, rows: list[GenerationRow], scorer: dict[str, Any],
              perplexity: dict[str, Any] | None = None) -> tuple[Store, StepManifest]:
    store = open_store((tmp_path / "store").as_uri()).child("runs/r1")
    gkey = "gen" + str(len(rows))
    data = "".join(dumps_row(r) for r in rows).encode()
    okey = f"generations/g/{SHARD.name()}.jsonl"
    store.put_bytes(okey, data)
    import hashlib

    rec = CommitRecord(key=gkey, kind="generate", label="gen", outputs=[
        OutputFile(key=okey, sha256=hashlib.sha256(data).hexdigest(), size=len(data))],
        info={"rows": len(rows)}, started_at="t", finished_at="t", seconds=0.0)  # as generate records it
    store.put_text(commit_key(gkey), rec.model_dump_json())
    params = {"scorer": scorer, "perplexity": perplexity}
    inputs = {"generations": [gkey]}
    m = StepManifest(kind="score", key=StepManifest.compute_key("score", params, inputs, SHARD), run_id="r1",
                     label="score", params=params, inputs=inputs, shard=SHARD, output_prefix="scores/s")
    return store, m


def output_rows(store: Store, rec: CommitRecord) -> list[ScoreRow]:
    assert [o.key for o in rec.outputs] == [f"scores/s/{SHARD.name()}.jsonl"]
    return list(read_jsonl(store.local_path(rec.outputs[0].key), ScoreRow))


def test_lexicon_shard(tmp_path: Path) -> None:
    rows = gen_rows(23)
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon", "allowlist": {}})
    rec, cached = run_step(m, store, log=lambda _: None)
    assert not cached
    out = output_rows(store, rec)
    assert [(r.prompt_id, r.sample_index, r.text) for r in out] == [(r.prompt_id, r.sample_index, r.text) for r in rows]
    for r in out:
        assert r.scorer_id == "lexicon-ldnoobw" and r.scorer_version and r.score_kind == "hits"
        assert r.toxicity is None and r.perplexity is None
        if r.language == "xx":
            assert r.hits is None and r.score_error == "no lexicon for xx"
        else:
            assert r.hits is not None and r.hits == len(r.spans or [])
    assert out[0].hits == 1 and out[0].spans == [[4, 11, "fucking"]]
    info = rec.info
    assert info["rows"] == 23 and info["missing"] == 4 and info["missing_by_language"] == {"xx": 4}
    assert info["rows_by_language"] == {"en": 19, "xx": 4} and info["scorer_id"] == "lexicon-ldnoobw"
    assert not store.list(f"steps/{m.key}/partial/")  # partial chunks are cleaned up
    assert run_step(m, store, log=lambda _: None)[1]  # committed: a rerun does nothing


def test_resume_after_a_kill_loses_and_duplicates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xdetox.scoring.lexicon import LexiconToxicityScorer

    # small batches and chunks, declared the way a kind declares them
    lex = scorer_kinds.get("lexicon")
    monkeypatch.setitem(scorer_kinds._KINDS, "lexicon",
                        dataclasses.replace(lex, batch_size=lambda s: 5, chunk_rows=lambda s: 10))
    rows = gen_rows(37)
    clean_store, clean_m = setup_run(tmp_path / "clean", rows, {"kind": "lexicon"})
    want = output_rows(clean_store, run_step(clean_m, clean_store, log=lambda _: None)[0])

    store, m = setup_run(tmp_path / "killed", rows, {"kind": "lexicon"})
    real = LexiconToxicityScorer.score_batch
    calls = {"n": 0}

    def dying(self: LexiconToxicityScorer, batch: list[GenerationRow]) -> Any:
        calls["n"] += 1
        if calls["n"] == 6:  # after 25 rows: two chunks of 10 stored, 5 rows in the unstored third
            raise KeyboardInterrupt("killed")
        return real(self, batch)

    monkeypatch.setattr(LexiconToxicityScorer, "score_batch", dying)
    with pytest.raises(KeyboardInterrupt):
        run_step(m, store, log=lambda _: None)
    assert not is_committed(store, m.key)
    assert len([k for k in store.list(f"steps/{m.key}/partial/") if k.endswith(".jsonl")]) == 2
    progress = read_progress(store, f"steps/{m.key}/partial")  # 2 chunks of 10 of the shard's 37 rows
    assert progress is not None and (progress.done, progress.total, progress.unit) == (20, 37, "rows")
    monkeypatch.setattr(LexiconToxicityScorer, "score_batch", real)
    rec, _ = run_step(m, store, log=lambda _: None)
    assert rec.info["resumed_rows"] == 20 and rec.info["rows"] == 37
    got = output_rows(store, rec)
    assert [r.model_dump() for r in got] == [r.model_dump() for r in want]


def test_perspective_shard_with_missing_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "AIzaSy-step-test-key"
    monkeypatch.setenv("XDETOX_TEST_PERSPECTIVE_KEY", key)
    rows = [gen_row("hello there", "en", 0), gen_row("merhaba", "tr", 1), gen_row("hallo", "de", 2),
            gen_row("ciao", "it", 3)]
    with FakePerspective(key=key) as server:
        server.script["ciao"] = [429] * 20
        # one transient gap in 4 texts passes only because this spec allows up to half of them missing
        spec = {"kind": "perspective", "endpoint": server.endpoint, "qps": 100, "max_retries": 1,
                "api_key_env": "XDETOX_TEST_PERSPECTIVE_KEY", "max_missing_share": 0.5}
        store, m = setup_run(tmp_path, rows, spec)
        logs: list[str] = []
        rec, _ = run_step(m, store, log=logs.append)
    out = output_rows(store, rec)
    assert [r.toxicity for r in out] == [fake_score("hello there"), None, fake_score("hallo"), None]
    assert all(r.score_kind == "probability" and r.scorer_id == "perspective-toxicity" for r in out)
    assert "does not support language tr" in (out[1].score_error or "")
    assert "gave up" in (out[3].score_error or "")
    assert rec.info["missing_by_language"] == {"it": 1, "tr": 1}
    manifest_text = store.get_text(f"steps/{m.key}/manifest.json")
    assert key not in manifest_text and key not in json.dumps(rec.model_dump()) and not any(key in x for x in logs)


def test_perspective_storm_is_not_committed_and_the_retry_resumes_from_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xdetox.scoring.base import ShardIncomplete

    monkeypatch.setenv("XDETOX_TEST_PERSPECTIVE_KEY", "k")
    per = scorer_kinds.get("perspective")  # partial chunks get stored
    monkeypatch.setitem(scorer_kinds._KINDS, "perspective", dataclasses.replace(per, chunk_rows=lambda s: 2))
    rows = [gen_row(f"text {i}", "en", i) for i in range(6)]
    with FakePerspective(key="k") as server:
        server.script["text 4"] = [503, 503]  # both attempts fail: 1 of 6 missing > default 1 %
        spec = {"kind": "perspective", "endpoint": server.endpoint, "qps": 100, "max_retries": 1,
                "api_key_env": "XDETOX_TEST_PERSPECTIVE_KEY"}
        store, m = setup_run(tmp_path, rows, spec)
        with pytest.raises(ShardIncomplete, match=r"1 of 6 texts"):
            run_step(m, store, log=lambda _: None)
        assert not is_committed(store, m.key) and not store.list(f"steps/{m.key}/partial/")
        first = len(server.requests)
        assert first == 5 + 2
        rec, _ = run_step(m, store, log=lambda _: None)  # the retry: the storm is over
        assert len(server.requests) - first == 1  # only the gap; five scores replayed from the cache
    assert [r.toxicity for r in output_rows(store, rec)] == [fake_score(f"text {i}") for i in range(6)]
    assert rec.info["scorer_stats"]["cache_hits"] == 5


def test_perspective_outage_fails_the_shard_without_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDETOX_TEST_PERSPECTIVE_KEY", "k")
    rows = [gen_row(f"text {i}", "en", i) for i in range(3)]
    with FakePerspective(key="k") as server:
        for r in rows:
            server.script[r.text] = [503] * 20
        spec = {"kind": "perspective", "endpoint": server.endpoint, "qps": 100, "max_retries": 1,
                "api_key_env": "XDETOX_TEST_PERSPECTIVE_KEY"}
        store, m = setup_run(tmp_path, rows, spec)
        from xdetox.scoring.perspective import PerspectiveUnavailableError

        with pytest.raises(PerspectiveUnavailableError):
            run_step(m, store, log=lambda _: None)
    assert not is_committed(store, m.key) and not store.list("scores/")


def test_perplexity_column(tmp_path: Path) -> None:
    ref = build_causal_lm(tmp_path / "ref")
    rows = gen_rows(6)
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"}, {"reference": str(ref), "batch_size": 4})
    rec, _ = run_step(m, store, log=lambda _: None)
    out = output_rows(store, rec)
    for r in out:
        if r.text:
            assert r.perplexity is not None and r.perplexity > 1.0
        else:
            assert r.perplexity is None
    assert rec.info["perplexity_missing_by_language"] == {"en": 1}
    from xdetox.scoring.perplexity import conditional_perplexity, load_reference

    model, tok = load_reference(str(ref), device="cpu")
    want = conditional_perplexity(model, tok, [r.prompt_text for r in rows], [r.text for r in rows])
    assert [r.perplexity is None for r in out] == [w is None for w in want]
    assert [r.perplexity for r in out if r.text] == pytest.approx([w for w in want if w is not None], rel=1e-5)


def test_malformed_input_names_file_and_line(tmp_path: Path) -> None:
    rows = gen_rows(3)
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"})
    key = f"generations/g/{SHARD.name()}.jsonl"
    lines = store.get_text(key).splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "sample_index": -1})
    store.put_text(key, "\n".join(lines) + "\n")
    from xdetox.records import RecordError

    with pytest.raises(RecordError, match=rf"{SHARD.name()}.jsonl:2: field sample_index"):
        run_step(m, store, log=lambda _: None)
    assert not is_committed(store, m.key)


def test_memory_does_not_grow_with_the_shard(tmp_path: Path) -> None:
    import tracemalloc

    def peak(n: int) -> int:
        store, m = setup_run(tmp_path / str(n), gen_rows(n), {"kind": "lexicon"})
        tracemalloc.start()
        try:
            run_step(m, store, log=lambda _: None)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1000), peak(8000)
    assert large < 1.5 * small, (small, large)


def test_self_perplexity_of_the_prompt_text(tmp_path: Path) -> None:
    """reference 'self' + text 'prompt': each row's prompt scored under the generating model
    (paper 2's knowledge preservation), read from the score step's ``model`` input."""
    model_dir = build_causal_lm(tmp_path / "gen-model", seed=3)
    rows = gen_rows(4)
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"},
                         {"reference": "self", "text": "prompt", "batch_size": 2})
    # the generating model is an upstream step's committed output
    files = sorted(p for p in model_dir.rglob("*") if p.is_file())
    outputs = []
    for p in files:
        key = f"models/m1/{p.relative_to(model_dir).as_posix()}"
        store.put_file(key, p)
        outputs.append(OutputFile(key=key, sha256=store.sha256(key), size=p.stat().st_size))
    store.put_text(commit_key("m1"), CommitRecord(key="m1", kind="train", label="m", outputs=outputs,
                                                  started_at="t", finished_at="t", seconds=0.0).model_dump_json())
    params = {**m.params, "model": {"id": "m", "source": "unused-hub-id", "arm": "tuned"}}
    inputs = {**m.inputs, "model": ["m1"]}
    m = m.model_copy(update={"params": params, "inputs": inputs,
                             "key": StepManifest.compute_key("score", params, inputs, SHARD)})
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
    store, m = setup_run(tmp_path, rows, {"kind": "lexicon"},
                         {"reference": str(model_dir), "text": "completion", "batch_size": 2})
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
