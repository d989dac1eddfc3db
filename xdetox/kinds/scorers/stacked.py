"""Scorer kind ``stacked``: the embedded probability scorer that combines the n-gram model's logit
with word-list hits (a small logistic combiner).

CPU only, offline. Built (``xdetox scorer build-stacked``) only from data the project may vendor:
ParaDetox's held-out pairs scored by n-gram models that did not see them, and lexicon version 5's (since stacked version 9)
word lists; never from RTP-LX, which only measures it (docs/SCORERS.md). Its numbers are
probabilities in [0, 1] on its own scale (balanced ParaDetox pairs), not Perspective's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from xdetox.kinds.scorers import register
from xdetox.kinds.scorers.base import ScorerKind, ScorerSpecBase


class StackedScorer(ScorerSpecBase):
    kind: Literal["stacked"] = "stacked"
    model: str = Field(default="builtin", description="'builtin' (the vendored combiner) or a folder holding "
                                                         "combiner.json and manifest.json from `xdetox scorer build-stacked`")


def _banner(spec: Mapping[str, Any]) -> str:
    return ("Scorer: stacked (embedded: character n-gram logistic regression and word-list hits, combined by a "
            "logistic regression fitted on held-out multilingual ParaDetox). Scores are probabilities in [0, 1] on "
            "this model's own scale: comparable across runs with the same model version, not numerically with "
            "Perspective API or the papers' tables.")


def _batch(spec: BaseModel) -> int:
    return 1024  # numpy over the whole batch, like the n-gram kind


KIND = register(ScorerKind(
    name="stacked", spec_model=StackedScorer, score_kind="probability", label="stacked", banner=_banner,
    comparable_with_papers=False, factory="xdetox.scoring.stacked:StackedToxicityScorer",
    resources="score-cpu", batch_size=_batch,
))
