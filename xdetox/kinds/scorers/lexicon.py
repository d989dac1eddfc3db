"""Scorer kind ``lexicon``: embedded multilingual word lists (LDNOOBW); counts hits, not probabilities.

CPU only, no network: the default scorer, so a run works anywhere. Its numbers are lexicon hit
rates under their own names, never compared with the papers' Perspective probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from xdetox.kinds.scorers import register
from xdetox.kinds.scorers.base import ScorerKind, ScorerSpecBase


class LexiconScorer(ScorerSpecBase):
    kind: Literal["lexicon"] = "lexicon"
    allowlist: dict[str, list[str]] = Field(default_factory=dict, description="per-language words to ignore")
    version: Literal[1, 2, 3, 4, 5] = Field(
        default=5, description="word-list version: 5 (default) = version 4 plus one concept checklist (core profanity, sexual "
                               "vulgarity, insults, contempt, threats, slurs) applied to every RTP-LX language with "
                               "the inflected forms texts contain (xdetox/data/lexicons/curation/v5); 4 = version 3 without the homographs whose benign "
                               "sense is common, added in version 3 or inherited from LDNOOBW (en vermin, escort; "
                               "fr ordures, gerbe; es perra, martillo; it pesce; pt burro, comer; nl beurt ...), "
                               "topic words and identity terms (pt homosexual; "
                               "xdetox/data/lexicons/curation/v4), their insult senses kept as phrases; 3 = version 2 "
                               "plus a fuller hand-written layer of everyday "
                               "insults, contempt phrases, threats, harassment terms and slurs with their inflected "
                               "forms (xdetox/data/lexicons/curation/v3); 2 = filtered LDNOOBW with the first hand "
                               "curation (benign entries removed, everyday insults and their inflected and vocative "
                               "forms added; xdetox/data/lexicons/curation/README.md); 1 = filtered LDNOOBW only, "
                               "what runs before "
                               "2026-12-04 recorded and what the nightly pins so its reference keeps its numbers")


def _banner(spec: Mapping[str, Any]) -> str:
    return ("Scorer: lexicon (embedded multilingual word lists). These scores are LEXICON HITS, "
            "not toxicity probabilities: results are reported as lexicon hit rates under their own names, "
            "and are not comparable with Perspective API or classifier probabilities, nor with the papers' tables.")


def _batch(spec: BaseModel) -> int:
    return 256  # pure-Python matching: large batches cost nothing and cut per-batch overhead


KIND = register(ScorerKind(
    name="lexicon", spec_model=LexiconScorer, score_kind="hits", label="lexicon", banner=_banner,
    comparable_with_papers=False, factory="xdetox.scoring.lexicon:LexiconToxicityScorer",
    resources="score-cpu", batch_size=_batch,
))
