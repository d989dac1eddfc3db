"""Distinct-n as paper 1 computes it (BatsResearch/cross-lingual-detox, xg/eval/metric_diversity.py).

For one prompt: the set of distinct n-grams over all of its (non-empty) samples, n-grams taken
within each sample, divided by the total number of tokens of those samples (the same denominator
for n = 1, 2, 3). A language's dist-n is the mean over prompts; prompts without tokens are skipped.

Tokenisation differs from the paper on purpose: the paper used the mT5 tokenizer's pieces, which
would need a model download. Here tokens are whitespace-separated words, and for languages written
without spaces (Chinese, Japanese) single characters (whitespace dropped). Values are therefore
comparable across runs of this project, not digit-for-digit with the paper's table.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: languages tokenised into characters: they are written without spaces between words
CHARACTER_LANGUAGES: frozenset[str] = frozenset({"zh", "ja"})
ORDERS: tuple[int, ...] = (1, 2, 3)


def tokenize(text: str, language: str) -> list[str]:
    if language in CHARACTER_LANGUAGES:
        return [c for c in text if not c.isspace()]
    return text.split()


class PromptNgrams:
    """Distinct n-grams of one prompt's samples, fed one sample at a time."""

    __slots__ = ("sets", "tokens")

    def __init__(self) -> None:
        self.sets: tuple[set[tuple[str, ...]], ...] = tuple(set() for _ in ORDERS)
        self.tokens = 0

    def add(self, tokens: list[str]) -> None:
        if not tokens:
            return  # the paper drops empty generations
        self.tokens += len(tokens)
        for s, n in zip(self.sets, ORDERS, strict=True):
            s.update(zip(*(tokens[i:] for i in range(n)), strict=False))

    def distinct(self) -> tuple[float, float, float] | None:
        """(dist-1, dist-2, dist-3), or None when the prompt produced no tokens."""
        if self.tokens == 0:
            return None
        d1, d2, d3 = (len(s) / self.tokens for s in self.sets)
        return d1, d2, d3


def distinct_n(samples: Iterable[str], language: str) -> tuple[float, float, float] | None:
    """Distinct-1/2/3 of one prompt's samples."""
    acc = PromptNgrams()
    for text in samples:
        acc.add(tokenize(text, language))
    return acc.distinct()


def mean_distinct(per_prompt: Iterable[Iterable[str]], language: str) -> dict[str, float | None]:
    """Mean over prompts of distinct-1/2/3 (``None`` when no prompt has tokens)."""
    vals = [d for d in (distinct_n(s, language) for s in per_prompt) if d is not None]
    if not vals:
        return {"dist1": None, "dist2": None, "dist3": None}
    arr = np.array(vals)
    return {f"dist{n}": float(arr[:, i].mean()) for i, n in enumerate(ORDERS)}
