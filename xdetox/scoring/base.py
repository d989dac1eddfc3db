"""The one interface every toxicity scorer implements, and how its results become ScoreRows.

A scorer has an ``id`` and a ``version`` (both written into every score row), a ``score_kind``
("probability": Perspective, classifiers; "hits": the lexicon), and ``score_batch(rows)``, which
returns one ``ScoreResult`` per row, in order. A row the scorer cannot score (unsupported
language, API refusal, exhausted retries) gets ``toxicity=None``/``hits=None`` and a
``score_error`` saying why: missing is never 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from xdetox.records import GenerationRow, OtherScore, ScoreRow

ScoreKind = Literal["probability", "hits"]


@dataclass(frozen=True)
class ScoreResult:
    toxicity: float | None = None
    hits: int | None = None
    spans: list[list[Any]] | None = None
    score_error: str | None = None
    truncated: bool | None = None  # classifier only: the text was cut to the model's max_length
    raw_score: float | None = None  # calibrated scorers: the scorer's own number before the map

    @property
    def missing(self) -> bool:
        return self.toxicity is None and self.hits is None


def missing(reason: str) -> ScoreResult:
    return ScoreResult(score_error=reason)


class ShardIncomplete(RuntimeError):
    """Too many texts of a shard could not be scored for a passing reason: fail it, don't commit gaps."""

    #: passing by definition (a storm, an outage, the shard deadline): ``xdetox step`` exits 75 and
    #: the workflow retries the shard after its backoff, replaying what the score cache holds
    retriable = True


class Scorer(ABC):
    id: str
    version: str
    score_kind: ScoreKind
    #: the scale of its numbers: "raw" (the scorer's own) or "calibrated to <reference> by map <digest>"
    scale: str = "raw"
    #: sha256 of the calibration map applied, if any
    calibration_digest: str | None = None

    @abstractmethod
    def supports(self, language: str) -> bool:
        """Whether this scorer can score text in ``language`` at all."""

    @abstractmethod
    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        """One result per row, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients, threads or GPU memory."""

    def attach_store(self, store: Any) -> None:  # noqa: B027 - optional hook
        """Given the step's store: a scorer with a score cache replays and records through it."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """After the last batch: raise ``ShardIncomplete`` when the shard must not be committed."""

    def passing_gap(self, score_error: str) -> bool:
        """Whether a stored row's ``score_error`` is a passing failure (a storm, a deadline) that a
        later attempt should ask again, rather than an answer (an unsupported language)."""
        return False

    def stats(self) -> dict[str, int]:
        """Counters for the step's info (requests sent, cache hits, ...)."""
        return {}

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_score_row(row: GenerationRow, result: ScoreResult, scorer: Scorer,
                 perplexity: float | None = None, others: list[OtherScore] | None = None) -> ScoreRow:
    return ScoreRow(
        **row.model_dump(),
        scorer_id=scorer.id,
        scorer_version=scorer.version,
        score_kind=scorer.score_kind,
        toxicity=result.toxicity,
        hits=result.hits,
        spans=result.spans,
        score_error=result.score_error,
        truncated=result.truncated,
        perplexity=perplexity,
        scale=scorer.scale,
        calibration=scorer.calibration_digest,
        raw_score=result.raw_score,
        other_scores=others,
    )


def to_other_score(result: ScoreResult, scorer: Scorer) -> OtherScore:
    return OtherScore(scorer_id=scorer.id, scorer_version=scorer.version, score_kind=scorer.score_kind,
                      toxicity=result.toxicity, hits=result.hits, score_error=result.score_error,
                      truncated=result.truncated, scale=scorer.scale, calibration=scorer.calibration_digest,
                      raw_score=result.raw_score)


def build_scorer(spec: dict[str, Any] | Any) -> Scorer:
    """A scorer from a scorer spec of any registered kind (its model or its dump): the kind's
    declared factory class, built by its ``from_spec``."""
    import importlib

    from xdetox.kinds import scorers

    parsed = scorers.validate_spec(spec)
    module, _, cls_name = scorers.get(str(parsed.kind)).factory.partition(":")  # type: ignore[attr-defined]
    cls = getattr(importlib.import_module(module), cls_name)
    scorer: Scorer = cls.from_spec(parsed)
    uri = getattr(parsed, "calibration", None)
    if uri:
        from xdetox.scoring.calibrated import CalibratedScorer

        try:
            return CalibratedScorer(scorer, uri, getattr(parsed, "calibration_digest", None))
        except Exception:
            scorer.close()
            raise
    return scorer
