"""A scorer kind defined outside xdetox (used by test_kinds_extension): spec model, class, declaration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from xdetox.fields import StrictModel
from xdetox.kinds.scorers import ScoreCost, ScoreRates, ScorerKind
from xdetox.records import GenerationRow
from xdetox.scoring.base import Scorer, ScoreResult


class LengthScorerSpec(StrictModel):
    kind: Literal["length"] = "length"
    per_char: float = Field(default=0.01, gt=0)
    gpu_seconds_per_text: float = Field(default=0.0, ge=0)


class LengthScorer(Scorer):
    """A toy probability scorer: min(1, characters x per_char)."""

    score_kind = "probability"

    def __init__(self, per_char: float) -> None:
        self.per_char, self.id, self.version = per_char, "length", "1"

    @classmethod
    def from_spec(cls, spec: LengthScorerSpec) -> LengthScorer:
        return cls(spec.per_char)

    def supports(self, language: str) -> bool:
        return True

    def score_batch(self, rows: Sequence[GenerationRow]) -> list[ScoreResult]:
        return [ScoreResult(toxicity=min(1.0, len(r.text) * self.per_char)) for r in rows]


def _cost(spec: BaseModel, n_texts: int, rates: ScoreRates) -> ScoreCost:
    assert isinstance(spec, LengthScorerSpec)
    return ScoreCost(gpu_hours=n_texts * spec.gpu_seconds_per_text / 3600)


def _banner(spec: Mapping[str, Any]) -> str:
    return "Scorer: length (a test kind)."


def length_kind_declaration() -> ScorerKind:
    return ScorerKind(name="length", spec_model=LengthScorerSpec, score_kind="probability", label="length",
                      banner=_banner, comparable_with_papers=False, factory=f"{__name__}:LengthScorer",
                      resources="score-cpu", cost=_cost)
