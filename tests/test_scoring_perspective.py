"""Perspective client against a local server speaking Perspective's real request/response format."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.scoring_fixtures import FakePerspective, fake_score, gen_row
from xdetox.scoring.base import build_scorer
from xdetox.scoring.perspective import (
    PerspectiveClient,
    PerspectiveFatalError,
    PerspectiveToxicityScorer,
    PerspectiveUnavailableError,
)
from xdetox.scoring.ratelimit import Pacer

KEY = "AIzaSy-secret-test-key-0123456789"


@pytest.fixture(autouse=True)
def _rate_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # the cross-process pacer's files go to a per-test folder, not the machine's temp dir
    monkeypatch.setenv("XDETOX_RATE_DIR", str(tmp_path_factory.mktemp("rate")))


def _all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # the CLI quiets httpx to ERROR (cli/library_output.py); a CLI test run earlier in this process
    # must not hide the request lines (with their URL) that these tests check for the key
    caplog.set_level(logging.DEBUG, logger="httpx")


@pytest.fixture
def server() -> Iterator[FakePerspective]:
    with FakePerspective(key=KEY) as s:
        yield s


def scorer(server: FakePerspective, qps: float = 200.0, max_retries: int = 4, key: str = KEY,
           **kw: object) -> PerspectiveToxicityScorer:
    client = PerspectiveClient(server.endpoint, key, qps=qps, max_retries=max_retries, backoff_base=0.01,
                               backoff_cap=0.05, **kw)  # type: ignore[arg-type]
    return PerspectiveToxicityScorer(client)


def test_scores_in_order_with_the_real_wire_format(server: FakePerspective) -> None:
    texts = [f"comment number {i}" for i in range(20)]
    with scorer(server) as s:
        res = s.score_batch([gen_row(t, "de" if i % 2 else "en", i) for i, t in enumerate(texts)])
    assert [r.toxicity for r in res] == [fake_score(t) for t in texts]
    assert all(r.score_error is None and r.hits is None for r in res)
    assert not server.violations
    assert sorted(r["languages"][0] for r in server.requests) == ["de"] * 10 + ["en"] * 10
    assert s.score_kind == "probability" and s.id == "perspective-toxicity" and s.version


def test_rate_limiter_holds_the_quota(server: FakePerspective) -> None:
    qps = 50.0
    with scorer(server, qps=qps) as s:
        assert s.client.workers == 50
        s.score_batch([gen_row(f"text {i}", "en", i) for i in range(60)])
    times = sorted(r["t"] for r in server.requests)
    assert len(times) == 60
    # no window of one second holds more than the quota; the mean rate is the 90 % margin: 45/s
    for i, t in enumerate(times):
        in_window = sum(1 for u in times[i:] if u - t < 1.0)
        assert in_window <= qps
    assert (len(times) - 1) / (times[-1] - times[0]) <= 45 * 1.05


def test_pacer_spacing_with_a_fake_clock_and_no_burst_after_a_pause() -> None:
    now = [0.0]

    def sleep(d: float) -> None:
        now[0] += d

    # quota 2/s at 80 %: 1.6/s, one request every 1/1.6 = 0.625 s
    pacer = Pacer(2.0, margin=0.8, clock=lambda: now[0], sleep=sleep)
    stamps = []
    for _ in range(3):
        pacer.acquire()
        stamps.append(now[0])
    now[0] += 10.0  # idle: a token bucket would now let a burst through
    for _ in range(3):
        pacer.acquire()
        stamps.append(now[0])
    assert stamps == pytest.approx([0.0, 0.625, 1.25, 11.25, 11.875, 12.5])


def test_429_storm_and_5xx_are_retried(server: FakePerspective) -> None:
    server.script["storm"] = [429, 429, 429, 503]
    server.script["flaky"] = [500]
    with scorer(server, max_retries=5) as s:
        res = s.score_batch([gen_row("storm"), gen_row("flaky"), gen_row("calm")])
    assert [r.toxicity for r in res] == [fake_score("storm"), fake_score("flaky"), fake_score("calm")]
    statuses = [r["status"] for r in server.requests if r["text"] == "storm"]
    assert statuses == [429, 429, 429, 503, 200]


def test_retry_after_is_honoured(server: FakePerspective) -> None:
    server.script["wait"] = [429]
    server.retry_after = "0.3"
    with scorer(server) as s:
        s.score_batch([gen_row("wait")])
    t = [r["t"] for r in server.requests if r["text"] == "wait"]
    assert len(t) == 2 and t[1] - t[0] >= 0.29


def test_exhausted_retries_give_missing_not_zero(server: FakePerspective) -> None:
    server.script["doomed"] = [429] * 10
    with scorer(server, max_retries=2) as s:
        res = s.score_batch([gen_row("doomed"), gen_row("fine")])
    assert res[0].toxicity is None and res[0].hits is None
    assert res[0].score_error and "gave up after 3 attempts" in res[0].score_error and "429" in res[0].score_error
    assert res[1].toxicity == fake_score("fine")
    assert sum(1 for r in server.requests if r["text"] == "doomed") == 3


def test_a_batch_where_everything_failed_fails_loudly(server: FakePerspective) -> None:
    for t in ("a", "b", "c"):
        server.script[t] = [503] * 10
    with scorer(server, max_retries=1) as s, pytest.raises(PerspectiveUnavailableError, match="all 3"):
        s.score_batch([gen_row(t) for t in ("a", "b", "c")])


def test_language_not_supported_is_missing(server: FakePerspective) -> None:
    server.unsupported.add("ko")  # the server refuses a language the client thinks it supports
    with scorer(server) as s:
        res = s.score_batch([gen_row("안녕하세요", "ko"), gen_row("hallo", "nl"), gen_row("merhaba", "tr")])
    assert res[0].toxicity is None and "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE" in (res[0].score_error or "")
    assert res[1].toxicity == fake_score("hallo")
    # tr is not a TOXICITY language: missing without sending a request
    assert res[2].toxicity is None and "does not support language tr" in (res[2].score_error or "")
    assert [r["text"] for r in server.requests if r["languages"] == ["tr"]] == []
    assert sum(1 for r in server.requests if r["text"] == "안녕하세요") == 1  # a 400 is never retried
    assert not s.supports("tr") and s.supports("hi-Latn")


def test_empty_text_is_sent_as_a_space_and_counted(server: FakePerspective) -> None:
    with scorer(server) as s:
        res = s.score_batch([gen_row("   "), gen_row(""), gen_row("x")])
    assert [r.toxicity for r in res] == [fake_score(" "), fake_score(" "), fake_score("x")]
    assert sorted(r["text"] for r in server.requests) == [" ", " ", "x"]
    assert s.stats()["empty_sent"] == 2


def test_empty_text_policy_missing_sends_nothing(server: FakePerspective) -> None:
    with scorer(server, empty_text="missing") as s:
        res = s.score_batch([gen_row("   "), gen_row("x")])
    assert res[0].toxicity is None and res[0].score_error == "perspective: empty text"
    assert len(server.requests) == 1


def test_bad_key_fails_at_once_and_never_shows_the_key(server: FakePerspective,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    wrong = "AIzaSy-wrong-key-should-never-appear"
    _all_logs(caplog)
    with scorer(server, key=wrong) as s:
        assert wrong not in repr(s)
        with pytest.raises(PerspectiveFatalError) as ei:
            s.score_batch([gen_row("hello")])
    assert "API key not valid" in str(ei.value)
    assert wrong not in str(ei.value) and wrong not in repr(ei.value)
    assert wrong not in caplog.text


def test_key_never_logged_during_retries(server: FakePerspective, caplog: pytest.LogCaptureFixture) -> None:
    _all_logs(caplog)
    server.script["x"] = [429, 500]
    with scorer(server) as s:
        res = s.score_batch([gen_row("x")])
    assert res[0].toxicity is not None
    assert "key=***" in caplog.text  # httpx logs each request URL: masked
    assert KEY not in caplog.text
    for rec in caplog.records:
        assert KEY not in rec.getMessage()


def test_transport_errors_are_retried_then_missing(caplog: pytest.LogCaptureFixture) -> None:
    _all_logs(caplog)
    endpoint = "http://127.0.0.1:9/v1alpha1/comments:analyze"  # nothing listens on the discard port
    client = PerspectiveClient(endpoint, KEY, qps=100, max_retries=1, backoff_base=0.01, timeout=2)
    with PerspectiveToxicityScorer(client) as s, pytest.raises(PerspectiveUnavailableError) as ei:
        s.score_batch([gen_row("hello")])
    assert KEY not in str(ei.value) and KEY not in caplog.text


def test_from_spec_reads_the_key_from_the_environment(server: FakePerspective,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = {"kind": "perspective", "endpoint": server.endpoint, "qps": 100, "api_key_env": "MY_PERSPECTIVE_KEY"}
    monkeypatch.delenv("MY_PERSPECTIVE_KEY", raising=False)
    with pytest.raises(PerspectiveFatalError, match="MY_PERSPECTIVE_KEY"):
        build_scorer(spec)
    monkeypatch.setenv("MY_PERSPECTIVE_KEY", KEY)
    s = build_scorer(spec)
    try:
        assert s.score_batch([gen_row("spec")])[0].toxicity == fake_score("spec")
        assert KEY not in repr(s)
    finally:
        s.close()
