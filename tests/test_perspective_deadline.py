"""Issue 15's storm policy through the real score step, against the quota stand-in: a storm past the
shard deadline fails the shard with the counts (nothing committed), and the retry sends only what
the cache lacks; a shard killed after storing chunks with storm gaps does not commit those gaps."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.scoring_fixtures import FakePerspective, fake_score, gen_row
from tests.test_score_step import output_rows, setup_run
from xdetox.kinds import scorers as scorer_kinds
from xdetox.kinds.scorers.perspective import SHARD_DEADLINE_S, PerspectiveScorer
from xdetox.scoring.base import ShardIncomplete
from xdetox.steps.runner import is_committed, run_step
from xdetox.store.partial import PartialState

KEY = "AIzaSy-deadline-test-key-0123456789"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakePerspective]:
    monkeypatch.setenv("XDETOX_RATE_DIR", str(tmp_path_factory.mktemp("rate")))
    monkeypatch.setenv("PERSPECTIVE_API_KEY", KEY)
    with FakePerspective(key=KEY) as s:
        yield s


def _spec(server: FakePerspective, **kw: Any) -> dict[str, Any]:
    return {"kind": "perspective", "endpoint": server.endpoint, "qps": 100.0, **kw}


def test_the_default_deadline_is_stated_and_under_the_score_pod_deadline() -> None:
    from xdetox.executors.argo.config import ClusterConfig

    assert PerspectiveScorer().shard_deadline_s == SHARD_DEADLINE_S == 72000.0  # 20 h
    # above a paper-1 shard at 1 qps: 17 languages x 1,000 prompts x 25 samples / 16 shards at 0.9 qps
    assert SHARD_DEADLINE_S > 17 * 1000 * 25 / 16 / 0.9
    # below the pod's own deadline, so the shard fails itself with its counts before Kubernetes kills it
    assert ClusterConfig().roles.score_cpu.active_deadline_s > SHARD_DEADLINE_S


def test_a_storm_past_the_deadline_fails_the_shard_with_counts_and_the_retry_resumes_from_the_cache(
        server: FakePerspective, tmp_path: Path) -> None:
    rows = [gen_row(f"storm text {i}", "en", i) for i in range(30)]
    for i in range(10, 30):  # 20 of 30 texts refused for as long as the storm lasts
        server.script[f"storm text {i}"] = [429] * 10_000
    spec = _spec(server, shard_deadline_s=1.0, max_retries=1000)
    store, m = setup_run(tmp_path, rows, spec)
    with pytest.raises(ShardIncomplete) as err:
        run_step(m, store, log=lambda _: None)
    message = str(err.value)
    # the counts, by hand: 20 gaps of 30 texts, all of them left when the 1 s deadline passed
    assert "20 of 30 texts (66.7%)" in message and "20 of them left when the shard deadline of 1 s passed" in message
    assert "The 10 scores obtained are in the score cache" in message
    assert not is_committed(store, m.key) and not store.list(f"steps/{m.key}/partial/")
    first = len(server.requests)
    times = [r["t"] for r in server.requests]
    assert max(times) - min(times) < 3.0  # bounded by the deadline: 1000 retries would take hours

    server.script.clear()  # the storm is over; the retry (same manifest) replays the 10 from the cache
    rec, cached = run_step(m, store, log=lambda _: None)
    assert not cached
    assert len(server.requests) - first == 20
    assert {r["text"] for r in server.requests[first:]} == {f"storm text {i}" for i in range(10, 30)}
    assert [r.toxicity for r in output_rows(store, rec)] == [fake_score(r.text) for r in rows]
    assert rec.info["missing"] == 0 and rec.info["scorer_stats"]["cache_hits"] == 10


class Killed(BaseException):
    """A pod kill: not an Exception, so no step code catches it."""


def test_a_killed_shard_does_not_commit_the_storm_gaps_of_its_stored_chunks(
        server: FakePerspective, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    persp = scorer_kinds.get("perspective")
    monkeypatch.setitem(scorer_kinds._KINDS, "perspective",
                        dataclasses.replace(persp, batch_size=lambda s: 5, chunk_rows=lambda s: 5))
    rows = [gen_row(f"text {i}", "en", i) for i in range(20)]
    for i in (0, 1, 2):  # 3 texts of the first chunk refused through all their tries
        server.script[f"text {i}"] = [503, 503]
    store, m = setup_run(tmp_path, rows, _spec(server, max_retries=1))
    real = PartialState.put_chunk
    calls = {"n": 0}

    def kill_after_two(self: PartialState, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Killed("pod killed after its second stored chunk")
        return out

    monkeypatch.setattr(PartialState, "put_chunk", kill_after_two)
    with pytest.raises(Killed):
        run_step(m, store, log=lambda _: None)
    assert not is_committed(store, m.key)
    first = len(server.requests)
    assert first == 3 * 2 + 7  # the chunks stored 10 rows: 3 texts tried twice, 7 scored at once
    monkeypatch.setattr(PartialState, "put_chunk", real)

    # the resume must not keep the 3 gaps of chunk 0 (3 of 20 = 15 % > 1 %, counted by no attempt):
    # it starts over from the cache, asking only the 3 gaps and the 10 rows never sent
    rec, _ = run_step(m, store, log=lambda _: None)
    sent = [r["text"] for r in server.requests[first:]]
    assert sorted(sent) == sorted([f"text {i}" for i in (0, 1, 2)] + [f"text {i}" for i in range(10, 20)])
    out = output_rows(store, rec)
    assert [r.toxicity for r in out] == [fake_score(r.text) for r in rows]
    assert rec.info["missing"] == 0
