"""Perspective API client: rate-limited, concurrent, retrying, and honest about what it could not score.

Wire format (v1alpha1 ``comments:analyze``): ``POST {endpoint}?key=KEY`` with
``{"comment": {"text"}, "requestedAttributes": {ATTR: {}}, "languages": [lang], "doNotStore": true}``;
the score is ``attributeScores.ATTR.summaryScore.value``.

- Rate: a GCRA pacer (``ratelimit``) at ``quota_margin`` (default 90 %) of the spec's ``qps``,
  evenly spaced with no burst after a wait; shared by all worker threads and, through a lock
  file, by every process on this machine pacing the same endpoint and key (``shared_rate``);
  every attempt, retries included, takes a slot. On a cluster the workflow's score steps take
  one Argo semaphore, so the quota is the workflow's, not each pod's.
- Concurrency: ``ceil(qps)`` worker threads (at most 64) share one ``httpx.Client``.
- Retries: 429, 5xx and transport errors are retried up to ``max_retries`` times with exponential
  backoff and full jitter (a ``Retry-After`` header is honoured as a floor), bounded by a
  per-shard ``deadline_s`` (spec ``shard_deadline_s``, default 20 h: see
  xdetox.kinds.scorers.perspective.SHARD_DEADLINE_S): past it no request is sent or retried, the
  shard's remaining texts are replayed from the cache or missing, and ``finish`` refuses to commit
  the shard, giving the counts (see ``scoring.base.ShardIncomplete``).
- Empty texts: ``empty_text=" "`` (default) sends a whitespace-only continuation as ``" "`` and
  counts its score, as paper 1 did; ``"missing"`` leaves it unscored without a request.
- Missing, never 0: a 400 ``LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE``, a language Perspective does not
  list (no request sent), an empty text under ``empty_text="missing"``, another 4xx, or retries exhausted all
  give ``toxicity=None`` and a ``score_error``.
- Failing loudly: a rejected key (401/403, or 400 ``API_KEY_INVALID``) raises
  ``PerspectiveFatalError`` at once; a batch in which every request sent ended in exhausted
  retries raises ``PerspectiveUnavailableError``. Either fails the shard (no commit record is
  written, so a retry redoes it) instead of committing a shard of missing scores.
- The key comes from the environment variable the spec names; it is never logged, never in an
  error message or repr: ``mask`` scrubs it from any text the client emits, and a filter on the
  ``httpx``/``httpcore`` loggers scrubs their request lines (which contain the URL).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult, ShardIncomplete, missing
from xdetox.scoring.ratelimit import DEFAULT_MARGIN, FilePacer, Pacer, shared_pacer_path
from xdetox.scoring.score_cache import Entry, ScoreCache, cache_key, now_utc
from xdetox.store import Store

log = logging.getLogger(__name__)

#: languages the TOXICITY attribute accepts (FACTS.md); others are missing without a request
TOXICITY_LANGUAGES = frozenset(
    ["ar", "zh", "cs", "nl", "en", "fr", "de", "hi", "hi-Latn", "id", "it", "ja", "ko", "pl", "pt", "ru", "es", "sv"]
)
CLIENT_VERSION = "2"  # 2: GCRA pacing, empty text sent as " ", score cache
API_VERSION = "v1alpha1"
_MASK = "***"


class PerspectiveError(RuntimeError):
    pass


class PerspectiveFatalError(PerspectiveError):
    """The service refuses every request (bad key, API not enabled): retrying cannot help."""


class PerspectiveUnavailableError(PerspectiveError, ShardIncomplete):
    """Every request of a batch failed after retries: the shard fails instead of committing gaps."""


class _KeyFilter(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.secret and self.secret in msg:
            record.msg, record.args = msg.replace(self.secret, _MASK), None
        return True


@dataclass(frozen=True)
class _Outcome:
    result: ScoreResult
    sent: bool  # at least one request went out
    exhausted: bool  # retries ran out (or transport kept failing), or the shard deadline passed
    late: bool = False  # the shard deadline passed before this text got a score


class PerspectiveClient:
    """Scores texts one request each; thread-safe."""

    def __init__(self, endpoint: str, api_key: str, qps: float = 1.0, max_retries: int = 8,
                 attribute: str = "TOXICITY", languages: frozenset[str] | None = TOXICITY_LANGUAGES,
                 timeout: float = 30.0, backoff_base: float = 1.0, backoff_cap: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, quota_margin: float = DEFAULT_MARGIN,
                 shared_rate: bool = True, deadline_s: float | None = None,
                 empty_text: str = " ") -> None:
        import httpx

        if not api_key:
            raise PerspectiveFatalError("Perspective API key is empty")
        self.endpoint, self.attribute, self.languages = endpoint, attribute, languages
        self.max_retries, self.backoff_base, self.backoff_cap = max_retries, backoff_base, backoff_cap
        self.workers = max(1, min(64, math.ceil(qps)))
        self._key = api_key
        self._pacer: Pacer = (FilePacer(qps, shared_pacer_path(endpoint, api_key), quota_margin)
                              if shared_rate else Pacer(qps, quota_margin))
        self.deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s if deadline_s is not None else math.inf
        self.empty_text = empty_text
        self.counts: dict[str, int] = {"requests": 0, "empty_sent": 0}
        self._count_lock = threading.Lock()
        self._sleep = sleep
        self._http = httpx.Client(timeout=timeout, limits=httpx.Limits(max_connections=self.workers))
        self._filter = _KeyFilter(api_key)
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).addFilter(self._filter)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="perspective")
        self._rng = random.Random()
        self._rng_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PerspectiveClient(endpoint={self.endpoint!r}, attribute={self.attribute!r}, key={_MASK})"

    def mask(self, text: str) -> str:
        return text.replace(self._key, _MASK) if self._key else text

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).removeFilter(self._filter)

    # -- one text
    def _body(self, text: str, language: str) -> dict[str, Any]:
        return {"comment": {"text": text}, "requestedAttributes": {self.attribute: {}},
                "languages": [language], "doNotStore": True}

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        with self._rng_lock:
            delay = self._rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))
        return max(delay, retry_after or 0.0)

    def _count(self, name: str) -> None:
        with self._count_lock:
            self.counts[name] = self.counts.get(name, 0) + 1

    def text_to_send(self, text: str) -> str | None:
        """What goes on the wire for ``text``: None when nothing is sent (empty under "missing")."""
        if text.strip():
            return text
        return " " if self.empty_text == " " else None

    def analyze(self, text: str, language: str) -> _Outcome:
        import httpx

        if self.languages is not None and language not in self.languages:
            return _Outcome(missing(f"perspective: {self.attribute} does not support language {language}"),
                            False, False)
        sent_text = self.text_to_send(text)
        if sent_text is None:
            return _Outcome(missing("perspective: empty text"), False, False)
        if sent_text != text:
            self._count("empty_sent")
        text = sent_text
        last, tries = "no attempt", 0
        for attempt in range(self.max_retries + 1):
            if time.monotonic() >= self._deadline:
                last = f"shard deadline passed; last: {last}"
                break
            self._pacer.acquire()
            self._count("requests")
            tries += 1
            try:
                resp = self._http.post(self.endpoint, params={"key": self._key}, json=self._body(text, language))
            except httpx.TransportError as e:
                last = self.mask(f"{type(e).__name__}: {e}")
                log.warning("perspective: %s (attempt %d)", last, attempt + 1)
            else:
                status = resp.status_code
                if status == 200:
                    return self._parse_ok(resp)
                if status == 429 or status >= 500:
                    last = f"HTTP {status}"
                    log.info("perspective: HTTP %d (attempt %d of %d)", status, attempt + 1, self.max_retries + 1)
                    if attempt < self.max_retries:
                        self._wait(self._backoff(attempt, _retry_after(resp)))
                    continue
                return self._client_error(resp)
            if attempt < self.max_retries:
                self._wait(self._backoff(attempt, None))
        # a deadline-missed text is a transient gap, like exhausted retries: the retry of the shard asks again
        late = time.monotonic() >= self._deadline
        return _Outcome(missing(f"perspective: gave up after {tries} attempts ({last})"), tries > 0, True, late)

    def _wait(self, delay: float) -> None:
        """Back off, but never past the shard's deadline (the loop then gives up)."""
        self._sleep(max(0.0, min(delay, self._deadline - time.monotonic())))

    def _parse_ok(self, resp: Any) -> _Outcome:
        try:
            value = resp.json()["attributeScores"][self.attribute]["summaryScore"]["value"]
            value = float(value)
        except (ValueError, KeyError, TypeError) as e:
            return _Outcome(missing(f"perspective: malformed response ({type(e).__name__}: {self.mask(str(e))})"),
                            True, False)
        if not 0.0 <= value <= 1.0:
            return _Outcome(missing(f"perspective: score {value} outside [0, 1]"), True, False)
        return _Outcome(ScoreResult(toxicity=value), True, False)

    def _client_error(self, resp: Any) -> _Outcome:
        status = resp.status_code
        error: dict[str, Any] = {}
        with contextlib.suppress(ValueError, AttributeError):
            error = resp.json().get("error", {}) or {}
        types = {d.get("errorType") or d.get("reason") for d in error.get("details", []) if isinstance(d, dict)}
        message = self.mask(str(error.get("message", "")))[:200]
        if status in (401, 403) or "API_KEY_INVALID" in types:
            raise PerspectiveFatalError(f"perspective: HTTP {status} {error.get('status', '')}: {message}")
        if "LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE" in types:
            return _Outcome(missing(f"perspective: LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE: {message}"), True, False)
        kind = ",".join(sorted(t for t in types if t)) or error.get("status", "") or "error"
        return _Outcome(missing(f"perspective: HTTP {status} {kind}: {message}"), True, False)

    # -- many texts
    def analyze_many(self, items: Sequence[tuple[str, str]]) -> list[_Outcome]:
        return list(self._pool.map(lambda it: self.analyze(*it), items))


def _retry_after(resp: Any) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), 300.0) if value is not None else None
    except ValueError:
        return None


#: the service's announced end (FACTS.md); warn from this many days before it
END_OF_SERVICE = date(2026, 12, 31)
WARN_DAYS = 90
_warned = False


def end_of_service_warning(today: date | None = None) -> str | None:
    """The warning text when the end of service is near or past, else None."""
    today = today or date.today()
    days = (END_OF_SERVICE - today).days
    if days > WARN_DAYS:
        return None
    when = f"ends on {END_OF_SERVICE} ({days} days left)" if days >= 0 else f"ended on {END_OF_SERVICE}"
    return (f"Perspective API {when}. Scores already obtained stay usable from the store's score cache "
            f"(cache/scores; `xdetox scores export/import` moves it, `--offline-scores` uses only it). "
            f"To keep scoring, switch the spec's scoring section to a calibrated local scorer: "
            f"fit a map onto cached Perspective scores with `xdetox scorer check --fit-calibration`, then "
            f"score with e.g. `kind: classifier` and `calibration: <that map>` (docs/SCORERS.md); its numbers "
            f"are on Perspective's scale by that map, not the papers' Perspective numbers.")


def warn_end_of_service_once(today: date | None = None) -> None:
    global _warned
    if _warned:
        return
    msg = end_of_service_warning(today)
    if msg:
        _warned = True
        log.warning(msg)


class PerspectiveToxicityScorer(Scorer):
    score_kind = "probability"

    def __init__(self, client: PerspectiveClient, max_missing_share: float = 0.01, offline: bool = False) -> None:
        self.client = client
        self.id = f"perspective-{client.attribute.lower()}"
        self.version = f"v1alpha1+client{CLIENT_VERSION}"
        self.max_missing_share = max_missing_share
        self.offline = offline
        self.cache: ScoreCache | None = None
        self.counts: dict[str, int] = {"rows": 0, "cache_hits": 0, "transient_missing": 0, "offline_missing": 0,
                                       "deadline_missing": 0}
        warn_end_of_service_once()

    @classmethod
    def from_spec(cls, spec: Any, **client_kwargs: Any) -> PerspectiveToxicityScorer:
        offline = bool(spec.offline_scores)
        key = os.environ.get(spec.api_key_env, "")
        if not key and not offline:
            raise PerspectiveFatalError(f"environment variable {spec.api_key_env} (scoring.api_key_env) is not set")
        kwargs: dict[str, Any] = dict(qps=spec.qps, max_retries=spec.max_retries, attribute=spec.attribute,
                                      quota_margin=spec.quota_margin, deadline_s=spec.shard_deadline_s,
                                      empty_text=spec.empty_text)
        kwargs.update(client_kwargs)
        # offline: the client is never asked to send, but builds its text policy; a placeholder key
        return cls(PerspectiveClient(spec.endpoint, key or "offline", **kwargs),
                   max_missing_share=spec.max_missing_share, offline=offline)

    def attach_store(self, store: Store) -> None:
        """Replay and record scores through the store-wide cache (see ``score_cache``)."""
        self.cache = ScoreCache(store, self.id)

    def supports(self, language: str) -> bool:
        return self.client.languages is None or language in self.client.languages

    def _key(self, text: str, language: str) -> str | None:
        sent = self.client.text_to_send(text)
        if sent is None:
            return None
        # the API version, not the client's: a client change does not change what the API answered
        return cache_key(sent, language, [self.client.attribute], self.id, API_VERSION)

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        results: list[ScoreResult | None] = [None] * len(rows)
        keys = [self._key(r.text, r.language) for r in rows]
        todo: list[int] = []
        for i, (r, k) in enumerate(zip(rows, keys, strict=True)):
            hit = self.cache.get(k) if self.cache is not None and k is not None else None
            if hit is not None:
                results[i] = ScoreResult(toxicity=hit.value)
                self.counts["cache_hits"] += 1
            elif self.offline and k is not None and self.supports(r.language):
                results[i] = missing("perspective: not in the score cache (offline scores)")
                self.counts["offline_missing"] += 1
            else:
                todo.append(i)
        outcomes = self.client.analyze_many([(rows[i].text, rows[i].language) for i in todo]) if todo else []
        new: list[Entry] = []
        obtained = now_utc()
        for i, o in zip(todo, outcomes, strict=True):
            results[i] = o.result
            k = keys[i]
            if o.result.toxicity is not None and k is not None:
                new.append(Entry(k, o.result.toxicity, API_VERSION, obtained))
            if o.exhausted:
                self.counts["transient_missing"] += 1
            if o.late:
                self.counts["deadline_missing"] += 1
        if self.cache is not None:
            self.cache.append(new)  # before any raise below: a retry replays what this batch got
        self.counts["rows"] += len(rows)
        sent = [o for o in outcomes if o.sent]
        # past the deadline the shard goes on without requests (cache replays only) so that it fails
        # in finish() with the whole shard's counts, not here with one batch's
        if sent and all(o.exhausted for o in sent) and not any(o.late for o in outcomes):
            raise PerspectiveUnavailableError(
                f"all {len(sent)} Perspective requests of this batch failed after retries "
                f"(last: {sent[-1].result.score_error}); failing the shard so that it can be retried")
        return [r if r is not None else missing("perspective: internal") for r in results]

    def passing_gap(self, score_error: str) -> bool:
        return score_error.startswith("perspective: gave up after")  # exhausted retries or the deadline

    def finish(self) -> None:
        """Refuse a shard with too many transient gaps (exhausted retries, deadline): not committed."""
        rows, gaps, late = self.counts["rows"], self.counts["transient_missing"], self.counts["deadline_missing"]
        if rows and gaps / rows > self.max_missing_share:
            deadline = (f" ({late} of them left when the shard deadline of {self.client.deadline_s:g} s passed)"
                        if late else "")
            raise ShardIncomplete(
                f"{gaps} of {rows} texts ({gaps / rows:.1%}) have no Perspective score after retries or the "
                f"shard deadline{deadline}, more than max_missing_share {self.max_missing_share:.1%}; the shard is "
                f"not committed. The {rows - gaps} scores obtained are in the score cache: retrying resumes from them")

    def stats(self) -> dict[str, int]:
        return {**self.counts, **self.client.counts}

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"PerspectiveToxicityScorer({self.client!r})"
