"""The ``score`` step: one generate shard in, one score shard out, streaming, resumable, honest."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import FakePerspective, fake_score, gen_row
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


def setup_run(tmp_path: Path, rows: list[GenerationRow], scorer: dict[str, Any]) -> tuple[Store, StepManifest]:
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
    params = {"scorer": scorer, "perplexity": None}
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
    # lexicon version 2 and 3 (the default) have everyday insults too
    assert out[0].hits == 2 and out[0].spans == [[4, 11, "fucking"], [12, 17, "idiot"]]
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


def test_an_old_manifest_with_perplexity_in_the_score_step_is_refused(tmp_path: Path) -> None:
    store, m = setup_run(tmp_path, gen_rows(2), {"kind": "lexicon"})
    params = {**m.params, "perplexity": {"reference": "x", "text": "continuation", "batch_size": 2}}
    m = m.model_copy(update={"params": params, "key": StepManifest.compute_key("score", params, m.inputs, SHARD)})
    with pytest.raises(ValueError, match="perplexity step"):
        run_step(m, store, log=lambda _: None)
    assert not is_committed(store, m.key)
