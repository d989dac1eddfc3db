"""What a scorer kind declares (``ScorerKind``) and what a cost estimate of it is (``ScoreCost``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from xdetox.fields import StrictModel, omit_none

ScoreKind = Literal["probability", "hits"]

#: the toxicity metrics each score kind has (defined in xdetox.metrics.toxicity), its default headline
#: first: paper 1's Table 2 leads with expected maximum toxicity; lexicon hits have their own names
TOXICITY_METRICS: dict[str, tuple[str, ...]] = {
    "probability": ("expected_maximum_toxicity", "toxicity_probability", "average_toxicity"),
    "hits": ("lexicon_hit_rate", "lexicon_prompt_hit_share", "lexicon_hits_per_sample"),
}
#: what a spec's ``metrics.headline`` may name (any score kind's metric; which one fits is checked
#: against the scorer by ``headline_metric``)
HeadlineMetric = Literal["expected_maximum_toxicity", "toxicity_probability", "average_toxicity",
                         "lexicon_hit_rate", "lexicon_prompt_hit_share", "lexicon_hits_per_sample"]


def headline_metric(score_kind: str, chosen: str | None = None) -> str:
    """The metric summaries and reports lead with: the spec's ``metrics.headline`` when it names one
    of this score kind's metrics, else the kind's default; a metric of another kind is an error
    (a hit count has no expected maximum toxicity)."""
    names = TOXICITY_METRICS[score_kind]
    if chosen is None:
        return names[0]
    if chosen not in names:
        raise ValueError(f"metrics.headline: {chosen!r} is not a metric of {score_kind} scores "
                         f"({'lexicon hits' if score_kind == 'hits' else 'probabilities'}); "
                         f"choose one of {', '.join(names)}")
    return chosen



class ScoreRates(Protocol):
    """The throughput figures a scorer's cost needs (xdetox.plan.estimate.Throughput has them)."""

    classifier_texts_per_s: float
    step_overhead_s: dict[str, float]


class ScorerSpecBase(StrictModel):
    """Fields every scorer spec may have, whatever its kind: a calibration map onto a reference scale.

    A kind's spec model that inherits this accepts ``calibration:``; the score step (and ``scorer
    check``) then applies the map per language and every row says which scale it is on.
    """

    calibration: str | None = Field(
        default=None,
        description="calibration map (local path, file:// or s3:// URI) written by `xdetox scorer check "
        "--fit-calibration`: scores are mapped per language onto the reference's probability scale")
    calibration_digest: str | None = Field(
        default=None,
        description="sha256 of the map's breakpoints; filled in from the map when the spec is loaded, so the "
        "step key changes when the map does; a stated digest the map does not match is an error")

    @model_serializer(mode="wrap")
    def _omit_no_calibration(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # uncalibrated specs dump exactly as before the field existed: their step keys stay put
        return omit_none(handler(self), ("calibration", "calibration_digest"))


@dataclass(frozen=True)
class ScoreCost:
    gpu_hours: float = 0.0
    api_days: float = 0.0


def _no_cost(spec: BaseModel, n_texts: int, rates: ScoreRates) -> ScoreCost:
    return ScoreCost()


def _no_secrets(spec: BaseModel) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class ScorerKind:
    """One scorer kind: its spec model and everything the rest of xdetox needs to know about it.

    ``factory`` is ``"module:Class"``: a ``xdetox.scoring.base.Scorer`` subclass with a
    ``from_spec(spec)`` classmethod, imported only when a score step runs (so declaring a kind
    pulls in no torch/httpx).
    """

    name: str
    spec_model: type[BaseModel]
    score_kind: ScoreKind
    #: short name a person reads (tables, warnings)
    label: str
    #: the report's one-paragraph banner: what this scorer is and what its numbers mean
    banner: Callable[[Mapping[str, Any]], str]
    #: whether its numbers are on the papers' scale (Perspective API probabilities); xdetox compare reads it
    comparable_with_papers: bool
    factory: str
    image: str = "score"
    #: cluster resource role of its score pods ("score-cpu" or "score-gpu"); score-cpu pods ask for
    #: no GPU (perplexity, which needs one, is its own step kind)
    resources: str = "score-cpu"
    #: key in the cluster's semaphore ConfigMap that every score pod of this kind takes a permit of:
    #: an API whose quota belongs to the key's project (Perspective) is limited across pods and
    #: workflows, not per pod (the chart sets the permits, 1 for "perspective-api")
    semaphore: str | None = None
    #: rows per score_batch call and rows per committed chunk (the resume unit) of the score step
    batch_size: Callable[[BaseModel], int] = lambda spec: 128
    chunk_rows: Callable[[BaseModel], int] = lambda spec: 2000
    #: environment variables its score pods need from the cluster's secrets (e.g. an API key)
    secret_env: Callable[[BaseModel], tuple[str, ...]] = _no_secrets
    cost: Callable[[BaseModel, int, ScoreRates], ScoreCost] = _no_cost

    def __post_init__(self) -> None:
        tag = self.spec_model.model_fields.get("kind")
        if tag is None or tag.default != self.name:
            raise ValueError(f"scorer kind {self.name!r}: its spec model needs kind: Literal[{self.name!r}] "
                             f"= {self.name!r}")
        if ":" not in self.factory:
            raise ValueError(f"scorer kind {self.name!r}: factory must be 'module:Class', got {self.factory!r}")
