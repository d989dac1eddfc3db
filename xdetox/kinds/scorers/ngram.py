"""Scorer kind ``ngram``: the embedded probability scorer, a character n-gram logistic regression.

CPU only, offline, tens of thousands of texts per second per core. Built (``xdetox scorer
build-ngram``) only from data the project may vendor: the multilingual ParaDetox pairs and the
LDNOOBW word lists; never from RTP-LX, which only measures it (docs/SCORERS.md). Its numbers are
probabilities in [0, 1] on its own scale (balanced toxic/neutral training), not Perspective's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from xdetox.kinds.scorers import register
from xdetox.kinds.scorers.base import ScorerKind, ScorerSpecBase


class NgramScorer(ScorerSpecBase):
    kind: Literal["ngram"] = "ngram"
    model: str = Field(default="builtin", description="'builtin' (the vendored model) or a folder holding "
                                                         "model.npz and manifest.json from `xdetox scorer build-ngram`")


def _banner(spec: Mapping[str, Any]) -> str:
    return ("Scorer: ngram (embedded character n-gram logistic regression, trained on multilingual ParaDetox "
            "and LDNOOBW word lists). Scores are probabilities in [0, 1] on this model's own scale: comparable "
            "across runs with the same model version, not numerically with Perspective API or the papers' tables.")


def _batch(spec: BaseModel) -> int:
    return 1024  # numpy over the whole batch: larger batches amortise the per-call overhead


KIND = register(ScorerKind(
    name="ngram", spec_model=NgramScorer, score_kind="probability", label="ngram", banner=_banner,
    comparable_with_papers=False, factory="xdetox.scoring.ngram:NgramToxicityScorer",
    resources="score-cpu", batch_size=_batch,
))
