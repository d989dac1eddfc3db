"""The stacked scorer's feature vector, shared by its builder and the scorer.

Per text: the n-gram logit ``z`` twice (one column for languages the n-gram model learnt from
ParaDetox pairs, one for languages it knows only from word lists: its logit is far weaker there,
0.63 vs 0.81 median AUROC on ParaDetox's held-out pairs, so each regime gets its own weight),
``log1p`` of word-list hits (the language's list plus the English list: English profanity is the
same evidence in any language's text), ``log1p`` of stem hits (words starting like an entry:
inflected and vocative forms), and a word-list-only indicator (moves the probability, not the
order within a language). Since version 5, also the max over the text's words of each word's own
n-gram logit (``ngram_features.word_max_logits``), again once per regime: the text logit is a mean
over the whole text, so one listed word in a long sentence is diluted by the sentence's length, and
its word's logit is not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

#: the stacked scorer's own version (its score rows say ``STACKED_VERSION+combiner digest``): 9 is 8
#: rebuilt on lexicon version 5's lists (one concept checklist added in every language); 8 is 7
#: rebuilt on lexicon version 4's lists (266 benign entries fewer); 7 is 6's
#: design rebuilt on lexicon version 3's lists (n-gram word-list pairs and the hit counts); 6 reads
#: n-gram feature version 5 (family copies, no zh/ja edge n-grams) and its combiner is also fitted on
#: style-matched negatives; 5 added the max word logit columns; up to 4 it followed the n-gram
#: features' version
STACKED_VERSION = "9"
FEATURES = ("ngram_logit_paradetox", "ngram_logit_wordlist_only", "log1p_hits", "log1p_stem_hits", "wordlist_only",
            "word_max_logit_paradetox", "word_max_logit_wordlist_only")
#: the lists the features read: the n-gram model's word-list languages (17 RTP-LX + ParaDetox ones)
WORDLIST_LANGUAGES = ("am", "ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt",
                      "ru", "sv", "uk", "zh")


def feature_matrix(z: np.ndarray, counts: np.ndarray, paradetox: np.ndarray, zmax: np.ndarray) -> np.ndarray:
    """``z`` the text logit, ``zmax`` the max word logit; ``counts`` is ``WordListFeatures.counts``
    (exact, stem, English); ``paradetox`` per row: True when the n-gram model learnt the row's
    language from ParaDetox pairs."""
    pd = paradetox.astype(np.float64)
    c = counts.astype(np.float64)
    return np.column_stack([z * pd, z * (1.0 - pd), np.log1p(c[:, 0] + c[:, 2]), np.log1p(c[:, 1]), 1.0 - pd,
                            zmax * pd, zmax * (1.0 - pd)])


def lists_digest(folder: Path, languages: Iterable[str]) -> str:
    """sha256 over the lists the features read (name and bytes), so a changed list is noticed."""
    h = hashlib.sha256()
    for lang in sorted(languages):
        path = folder / f"{lang}.txt"
        if path.is_file():
            h.update(f"{lang}\n".encode())
            h.update(path.read_bytes())
    return h.hexdigest()
