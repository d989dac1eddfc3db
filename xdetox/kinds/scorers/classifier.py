"""Scorer kind ``classifier``: a local sequence classifier's probability of its toxic label.

Probabilities, but not on Perspective's scale: compare runs with the same classifier only. Runs on
a GPU pod; cost from the estimator's classifier throughput.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from xdetox.fields import Language
from xdetox.kinds.scorers import register
from xdetox.kinds.scorers.base import ScoreCost, ScoreRates, ScorerKind, ScorerSpecBase


class ClassifierScorer(ScorerSpecBase):
    kind: Literal["classifier"] = "classifier"
    model: str = Field(description="local path, s3:// URI or hub id of a sequence classifier")
    toxic_label: str | int = Field(description="label name or index whose probability is the score")
    batch_size: int = Field(default=32, gt=0)
    max_length: int = Field(default=256, gt=0)
    languages: list[Language] | None = Field(
        default=None, description="languages the classifier supports; others get a missing score"
    )




def _banner(spec: Mapping[str, Any]) -> str:
    return (f"Scorer: classifier {spec.get('model', '?')} (toxic label {spec.get('toxic_label', '?')!r}). "
            "Scores are the classifier's probabilities in [0, 1]: comparable across runs with the same classifier, "
            "not numerically with Perspective API.")


def _batch(spec: BaseModel) -> int:
    assert isinstance(spec, ClassifierScorer)
    return 4 * spec.batch_size  # rows read per call; the classifier batches them itself


def _cost(spec: BaseModel, n_texts: int, rates: ScoreRates) -> ScoreCost:
    return ScoreCost(gpu_hours=(n_texts / rates.classifier_texts_per_s + rates.step_overhead_s["small"]) / 3600)


KIND = register(ScorerKind(
    name="classifier", spec_model=ClassifierScorer, score_kind="probability", label="classifier",
    banner=_banner, comparable_with_papers=False, factory="xdetox.scoring.classifier:ClassifierToxicityScorer",
    resources="score-gpu", batch_size=_batch, cost=_cost,
))
