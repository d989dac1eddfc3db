"""Perspective API client: rate-limited, concurrent, retrying, and honest about what it could not score.

Wire format (v1alpha1 ``comments:analyze``): ``POST {endpoint}?key=KEY`` with
``{"comment": {"text"}, "requestedAttributes": {ATTR: {}}, "languages": [lang], "doNotStore": true}``;
the score is ``attributeScores.ATTR.summaryScore.value``.

- Rate: one token bucket shared by all worker threads, set to the spec's ``qps`` with no burst,
  so no window of the quota is exceeded; every attempt, retries included, takes a token.
- Concurrency: ``ceil(qps)`` worker threads (at most 64) share one ``httpx.Client``.
- Retries: 429, 5xx and transport errors are retried up to ``max_retries`` times with exponential
  backoff and full jitter (a ``Retry-After`` header is honoured as a floor).
- Missing, never 0: a 400 ``LANGUAGE_NOT_SUPPORTED_BY_ATTRIBUTE``, a language Perspective does not
  list (no request sent), an empty text (no request sent), another 4xx, or retries exhausted all
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
from typing import Any

from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult, missing
from xdetox.scoring.ratelimit import TokenBucket

log = logging.getLogger(__name__)

#: languages the TOXICITY attribute accepts (FACTS.md); others are missing without a request
TOXICITY_LANGUAGES = frozenset(
    ["ar", "zh", "cs", "nl", "en", "fr", "de", "hi", "hi-Latn", "id", "it", "ja", "ko", "pl", "pt", "ru", "es", "sv"]
)
CLIENT_VERSION = "1"
_MASK = "***"


class PerspectiveError(RuntimeError):
    pass


class PerspectiveFatalError(PerspectiveError):
    """The service refuses every request (bad key, API not enabled): retrying cannot help."""


class PerspectiveUnavailableError(PerspectiveError):
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
    exhausted: bool  # retries ran out (or transport kept failing)


class PerspectiveClient:
    """Scores texts one request each; thread-safe."""

    def __init__(self, endpoint: str, api_key: str, qps: float = 1.0, max_retries: int = 8,
                 attribute: str = "TOXICITY", languages: frozenset[str] | None = TOXICITY_LANGUAGES,
                 timeout: float = 30.0, backoff_base: float = 1.0, backoff_cap: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        import httpx

        if not api_key:
            raise PerspectiveFatalError("Perspective API key is empty")
        self.endpoint, self.attribute, self.languages = endpoint, attribute, languages
        self.max_retries, self.backoff_base, self.backoff_cap = max_retries, backoff_base, backoff_cap
        self.workers = max(1, min(64, math.ceil(qps)))
        self._key = api_key
        self._bucket = TokenBucket(qps, burst=1.0)
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

    def analyze(self, text: str, language: str) -> _Outcome:
        import httpx

        if self.languages is not None and language not in self.languages:
            return _Outcome(missing(f"perspective: {self.attribute} does not support language {language}"),
                            False, False)
        if not text.strip():
            return _Outcome(missing("perspective: empty text"), False, False)
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            self._bucket.acquire()
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
                        self._sleep(self._backoff(attempt, _retry_after(resp)))
                    continue
                return self._client_error(resp)
            if attempt < self.max_retries:
                self._sleep(self._backoff(attempt, None))
        return _Outcome(missing(f"perspective: gave up after {self.max_retries + 1} attempts ({last})"), True, True)

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


class PerspectiveToxicityScorer(Scorer):
    score_kind = "probability"

    def __init__(self, client: PerspectiveClient) -> None:
        self.client = client
        self.id = f"perspective-{client.attribute.lower()}"
        self.version = f"v1alpha1+client{CLIENT_VERSION}"

    @classmethod
    def from_spec(cls, spec: Any, **client_kwargs: Any) -> PerspectiveToxicityScorer:
        key = os.environ.get(spec.api_key_env, "")
        if not key:
            raise PerspectiveFatalError(f"environment variable {spec.api_key_env} (scoring.api_key_env) is not set")
        return cls(PerspectiveClient(spec.endpoint, key, qps=spec.qps, max_retries=spec.max_retries,
                                     attribute=spec.attribute, **client_kwargs))

    def supports(self, language: str) -> bool:
        return self.client.languages is None or language in self.client.languages

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        outcomes = self.client.analyze_many([(r.text, r.language) for r in rows])
        sent = [o for o in outcomes if o.sent]
        if sent and all(o.exhausted for o in sent):
            raise PerspectiveUnavailableError(
                f"all {len(sent)} Perspective requests of this batch failed after retries "
                f"(last: {sent[-1].result.score_error}); failing the shard so that it can be retried")
        return [o.result for o in outcomes]

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"PerspectiveToxicityScorer({self.client!r})"

