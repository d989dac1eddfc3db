"""Typed references from one step to the steps it reads, where a name alone would not say enough.

A manifest's inputs map a name to upstream step keys. Where the reader needs to know what an input
*is* (which model, arm and prompt set a group of score shards belongs to), the planner puts a
reference in the reader's params: the reader takes model, arm and prompt set from the reference,
never by splitting the input's name. The name stays readable in manifests ("scores:tiny:base:x")
but is only ever used as an opaque key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from xdetox.kinds import scorers as scorer_kinds

ArmRole = Literal["base", "tuned"]


def _scorer_dump(value: dict[str, Any]) -> dict[str, Any]:
    scorer_kinds.validate_spec(value)  # a registered kind's valid spec; the dump itself stays in the params
    return value


#: a scorer spec as steps carry it: its JSON dump, checked against the registered scorer kinds
ScorerDump = Annotated[dict[str, Any], AfterValidator(_scorer_dump)]


class ModelRef(BaseModel):
    """How a step's params name a model arm (``planning.model_params``): part of its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    source: str
    revision: str | None
    dtype: str
    architecture: str
    arm: ArmRole
    tuned: str | None = Field(default=None, description="the tuned arm's label, e.g. dpo-en (absent for base)")


class ScoreRef(BaseModel):
    """The score shards of one (model, arm, prompt set): what the evaluation aggregates as an arm."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str = Field(description="the manifest input naming the score shards")
    model_id: str
    arm: ArmRole
    prompt_set: str
    languages: list[str]
    #: the manifest input naming the perplexity shards of the same generate shards, when the spec
    #: asks for perplexity (dumped without it otherwise, so evaluate keys stay as they were)
    perplexity_input: str | None = None

    @classmethod
    def of(cls, model_id: str, arm: ArmRole, prompt_set: str, languages: list[str]) -> ScoreRef:
        return cls(input=f"scores:{model_id}:{arm}:{prompt_set}", model_id=model_id, arm=arm,
                   prompt_set=prompt_set, languages=list(languages))


class AlignmentRef(BaseModel):
    """One model arm's alignment step: what the evaluation correlates with the change in toxicity."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str = Field(description="the manifest input naming the align step")
    model_id: str
    arm: ArmRole

    @classmethod
    def of(cls, model_id: str, arm: ArmRole) -> AlignmentRef:
        return cls(input=f"align:{model_id}:{arm}", model_id=model_id, arm=arm)
