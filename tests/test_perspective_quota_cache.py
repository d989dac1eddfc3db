"""Issue 15: never over quota (two processes at once), the store-wide score cache, the storm policy,
``xdetox scores export/import``, the end-of-service warning. Against the quota-enforcing stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.scoring_fixtures import FakePerspective, fake_score, gen_row
from xdetox.scoring.base import ShardIncomplete
from xdetox.scoring.perspective import PerspectiveClient, PerspectiveToxicityScorer, end_of_service_warning
from xdetox.scoring.score_cache import Entry, ScoreCache
from xdetox.store import open_store

KEY = "AIzaSy-quota-test-key-0123456789"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _rate_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDETOX_RATE_DIR", str(tmp_path_factory.mktemp("rate")))


@pytest.fixture
def server() -> Iterator[FakePerspective]:
    with FakePerspective(key=KEY) as s:
        yield s


def make(server: FakePerspective, qps: float = 200.0, max_retries: int = 4, max_missing_share: float = 0.01,
         offline: bool = False, **kw: object) -> PerspectiveToxicityScorer:
    client = PerspectiveClient(server.endpoint, KEY, qps=qps, max_retries=max_retries, backoff_base=0.01,
                               backoff_cap=0.05, **kw)  # type: ignore[arg-type]
    return PerspectiveToxicityScorer(client, max_missing_share=max_missing_share, offline=offline)


_CHILD = """
import sys
from tests.scoring_fixtures import gen_row
from xdetox.scoring.perspective import PerspectiveClient, PerspectiveToxicityScorer
endpoint, key, n, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
client = PerspectiveClient(endpoint, key, qps=20, max_retries=6, backoff_base=0.05, backoff_cap=0.2)
with PerspectiveToxicityScorer(client) as s:
    res = s.score_batch([gen_row(f"{tag} text {i}", "en", i) for i in range(n)])
print(sum(r.toxicity is not None for r in res))
"""


def test_two_processes_share_one_quota_and_never_exceed_it(tmp_path: Path) -> None:
    # quota 20/s, 5 % 429s and 5 % 503s injected; two scoring processes, 25 texts each, at once
    with FakePerspective(key=KEY, quota=20, rate_429=0.05, rate_503=0.05, seed=3) as srv:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [subprocess.Popen([sys.executable, "-c", _CHILD, srv.endpoint, KEY, "25", tag], env=env,
                                  stdout=subprocess.PIPE, text=True, cwd=ROOT) for tag in ("a", "b")]
        outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert [int(o.strip().splitlines()[-1]) for o in outs] == [25, 25]  # all scored despite the injected faults
    assert srv.over_quota == 0
    injected = sum(1 for r in srv.requests if r["status"] != 200)
    assert len(srv.arrivals) == 50 + injected  # every request is accounted for


def test_quota_stand_in_counts_a_burst(server: FakePerspective) -> None:
    # the stand-in itself must catch an over-quota client: 5 requests at once against quota 3
    server.quota = 3
    client = PerspectiveClient(server.endpoint, KEY, qps=1000, max_retries=0, shared_rate=False)
    with PerspectiveToxicityScorer(client) as s:
        res = s.score_batch([gen_row(f"burst {i}") for i in range(5)])
    assert server.over_quota == 2
    assert sum(r.toxicity is None for r in res) == 2


def test_rerun_of_the_same_generations_sends_no_request(server: FakePerspective, tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    rows = [gen_row(f"sentence {i}", "de" if i % 2 else "en", i) for i in range(12)] + [gen_row("  ")]
    with make(server) as s:
        s.attach_store(store.child("runs/first"))
        first = s.score_batch(rows)
    assert len(server.requests) == 13
    with make(server) as s:
        s.attach_store(store.child("runs/second-name"))  # another run name, same store
        again = s.score_batch(rows)
        assert s.stats()["cache_hits"] == 13 and s.stats()["requests"] == 0
    assert len(server.requests) == 13
    assert [r.toxicity for r in again] == [r.toxicity for r in first]
    objs = store.list("cache/scores/perspective-toxicity/")
    assert len(objs) == 1
    line = json.loads(store.get_text(objs[0]).splitlines()[0])
    assert line["api_version"] == "v1alpha1" and line["obtained"].startswith(str(date.today().year))


def test_offline_uses_only_the_cache(server: FakePerspective, tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    with make(server) as s:
        s.attach_store(store)
        s.score_batch([gen_row("known")])
    with make(server, offline=True) as s:
        s.attach_store(store)
        res = s.score_batch([gen_row("known"), gen_row("unknown")])
    assert res[0].toxicity == fake_score("known")
    assert res[1].toxicity is None and "offline" in (res[1].score_error or "")
    assert [r["text"] for r in server.requests] == ["known"]


def test_concurrent_writers_lose_no_entry(store_uri: str) -> None:
    store = open_store(store_uri)  # file:// and the SeaweedFS S3 fixture

    def write(w: int) -> None:
        cache = ScoreCache(store, "perspective-toxicity")
        for b in range(10):
            cache.append([Entry(f"{w}-{b}-{i}", 0.5, "v1alpha1", "2026-12-04T00:00:00Z") for i in range(5)])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ScoreCache(store, "perspective-toxicity").load()) == 4 * 10 * 5


def test_storm_fails_the_shard_with_counts_and_the_retry_resumes_from_the_cache(server: FakePerspective,
                                                                              tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    rows = [gen_row(f"storm text {i}", "en", i) for i in range(20)]
    for i in range(3):  # 3 of 20 texts stay unavailable through both attempts: 15 % missing > 1 %
        server.script[f"storm text {i}"] = [503, 429]
    with make(server, max_retries=1) as s:
        s.attach_store(store)
        s.score_batch(rows)
        with pytest.raises(ShardIncomplete, match=r"3 of 20 texts \(15.0%\)"):
            s.finish()
    sent_first = len(server.requests)
    assert sent_first == 17 + 3 * 2
    with make(server, max_retries=1) as s:  # the retry: the storm is over
        s.attach_store(store)
        res = s.score_batch(rows)
        s.finish()
    assert len(server.requests) - sent_first == 3  # only the three gaps were asked again
    assert [r.toxicity for r in res] == [fake_score(r.text) for r in rows]


def test_the_shard_deadline_bounds_a_storm(server: FakePerspective) -> None:
    server.rate_429 = 1.0  # everything refused
    client = PerspectiveClient(server.endpoint, KEY, qps=200, max_retries=50, backoff_base=0.2, backoff_cap=0.2,
                               deadline_s=0.5)
    with PerspectiveToxicityScorer(client) as s:
        res = [o.result for o in s.client.analyze_many([("a", "en"), ("b", "en")])]
    assert all(r.toxicity is None and "deadline" in (r.score_error or "") for r in res)
    times = [r["t"] for r in server.requests]
    assert max(times) - min(times) < 0.8  # 50 retries at 0.2 s would take 10 s


def test_export_import_moves_the_cache(server: FakePerspective, tmp_path: Path) -> None:
    from xdetox.cli import app

    laptop, cluster = (tmp_path / "laptop").as_uri(), (tmp_path / "cluster").as_uri()
    with make(server) as s:
        s.attach_store(open_store(laptop))
        s.score_batch([gen_row(f"t{i}") for i in range(4)])
    runner = CliRunner()
    dump = tmp_path / "cache.jsonl"
    r = runner.invoke(app, ["scores", "export", str(dump), "--store", laptop])
    assert r.exit_code == 0, r.output
    assert len(dump.read_text().splitlines()) == 4
    for expected in (4, 0):  # importing twice adds nothing the second time
        r = runner.invoke(app, ["scores", "import", str(dump), "--store", cluster])
        assert r.exit_code == 0, r.output
        assert f"imported {expected} new" in r.output
    assert len(ScoreCache(open_store(cluster), "perspective-toxicity").load()) == 4
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"scorer_id": "perspective-toxicity", "key": "k"}\n')
    r = runner.invoke(app, ["scores", "import", str(bad), "--store", cluster])
    assert r.exit_code == 2 and "line 1" in r.output and "Traceback" not in r.output


def test_offline_scores_flag_needs_a_cached_scorer(tmp_path: Path) -> None:
    from tests.test_spec_errors import VALID
    from xdetox.cli import app

    spec = tmp_path / "s.yaml"
    spec.write_text(VALID)  # a valid spec scored by the lexicon, which has no score cache
    r = CliRunner().invoke(app, ["run", str(spec), "--offline-scores", "--store", tmp_path.as_uri()])
    assert r.exit_code == 2 and "has no score cache" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()  # refused before anything ran


def test_end_of_service_warning() -> None:
    assert end_of_service_warning(date(2026, 6, 1)) is None  # 213 days before: quiet
    near = end_of_service_warning(date(2026, 12, 4))
    assert near is not None and "27 days left" in near and "calibrated local scorer" in near
    assert "xdetox scorer check --fit-calibration" in near and "calibration:" in near  # the spec field to set
    past = end_of_service_warning(date(2027, 1, 2))
    assert past is not None and "ended on 2026-12-31" in past


def test_end_of_service_warning_once_per_run(server: FakePerspective, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    import xdetox.scoring.perspective as p

    monkeypatch.setattr(p, "_warned", False)
    monkeypatch.setattr(p, "end_of_service_warning", lambda today=None: "Perspective API ends soon")
    for _ in range(3):  # three score steps of one run in one process
        make(server).close()
    assert [r.getMessage() for r in caplog.records].count("Perspective API ends soon") == 1


def _entry(i: int, value: float) -> Entry:
    return Entry(f"{i:064x}", value, "v1alpha1", "2026-12-04T13:00:00Z")


def test_compaction_merges_objects_keeps_every_entry_and_is_idempotent(store_uri: str) -> None:
    store = open_store(store_uri)
    cache = ScoreCache(store, "perspective-toxicity")
    cache.append([_entry(1, 0.1), _entry(2, 0.2)], name="batch-a")
    cache.append([_entry(2, 0.2), _entry(3, 0.3)], name="batch-b")  # 2 again: both score the same request
    cache.append([_entry(4, 0.4)], name="import-c")
    before = ScoreCache(store, "perspective-toxicity").load()
    assert len(before) == 4
    assert ScoreCache(store, "perspective-toxicity").compact() == (3, 4)
    objects = ScoreCache(store, "perspective-toxicity").objects()
    assert len(objects) == 1 and objects[0].split("/")[-1].startswith("compact-")
    assert ScoreCache(store, "perspective-toxicity").load() == before
    assert ScoreCache(store, "perspective-toxicity").compact() == (0, 4)  # one object: left as it is
    assert ScoreCache(store, "perspective-toxicity").objects() == objects


def test_a_reader_that_listed_before_a_compaction_lists_again(tmp_path: Path) -> None:
    store = open_store((tmp_path / "s").as_uri())
    writer = ScoreCache(store, "perspective-toxicity")
    writer.append([_entry(1, 0.1)], name="batch-a")
    writer.append([_entry(2, 0.2)], name="batch-b")
    reader = ScoreCache(store, "perspective-toxicity")
    stale = reader.objects()
    ScoreCache(store, "perspective-toxicity").compact()  # deletes batch-a and batch-b
    listings = iter([stale])
    real = reader.objects
    reader.objects = lambda: next(listings, None) or real()  # type: ignore[method-assign]
    assert {k: e.value for k, e in reader.load().items()} == {f"{1:064x}": 0.1, f"{2:064x}": 0.2}


def test_cli_compact_reports_each_scorer(tmp_path: Path) -> None:
    from xdetox.cli.main import app

    uri = (tmp_path / "s").as_uri()
    for i in range(3):
        ScoreCache(open_store(uri), "perspective-toxicity").append([_entry(i, i / 10)])
    res = CliRunner().invoke(app, ["scores", "compact", "--store", uri])
    assert res.exit_code == 0, res.output
    assert "perspective-toxicity: 3 cached scores in one object (merged 3)" in res.output
    assert len(ScoreCache(open_store(uri), "perspective-toxicity").objects()) == 1
