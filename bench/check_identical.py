"""Check that a speed-up left the embedded scorers' outputs bit-identical.

    python bench/check_identical.py --save before.npz     # at the old commit
    python bench/check_identical.py --against before.npz  # at the new one: exit 1 on any difference

Scores a fixed set of texts with the stacked scorer (its feature matrix and probabilities), the
n-gram scorer (probabilities), the word-list features (hit counts) and the n-gram features the
builder trains on (``featurize``: rows, columns, scales, in order) and stores or compares the
raw arrays with ``np.array_equal`` on their bytes (a float that moved by one ulp is a
difference). The texts: every bundled ParaDetox sentence (toxic and neutral side, 9 languages,
the shared copy when the bundled one is absent), cut into continuation-sized pieces as the
benchmarks do, scored in batches of 1024 one language at a time, then again as one mixed batch
per 1024 with languages assigned round-robin over the RTP-LX and ParaDetox codes (so every
language's salt, list and substring rule is exercised, and batches hold several languages); plus
edge cases: "", whitespace, punctuation, emoji, NUL, combining marks and Hangul jamo that
compose if two texts' ends meet, a 20,000-character text,
an unknown language code and region-tagged codes.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_lexicon import pieces, sentences  # noqa: E402
from xdetox.scoring.ngram import NgramToxicityScorer  # noqa: E402
from xdetox.scoring.ngram_features import featurize  # noqa: E402
from xdetox.scoring.stacked import StackedToxicityScorer  # noqa: E402

PARADETOX = ("en", "de", "es", "ru", "uk", "ar", "hi", "am", "zh")
ALL = ("am", "ar", "cs", "de", "en", "es", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt", "ru", "sv", "uk",
       "zh", "th", "tr", "xx", "pt-BR", "zh_Hans", "EN")
EDGE = ["", " ", "\t\n", "!!! ...", "😀😀 🤬", "\x00", "a\x00b", "idiot\x00idiot", "é", "e\u0301", "\u0301abc",
        "ﬁne ＩＤＩＯＴ", "Σίσυφος ΣΑΣ", "straße STRASSE", "İstanbul", "Scunthorpe", "son of a", "bitch",
        "x" * 20000, ("you idiot " * 2000), "дебил " * 3000, "バカ" * 5000, "개새끼야", "ты дебила", "kurwo",
        # neighbours that would compose if a batch were normalised without its joins: Hangul jamo
        # (L then V), a letter then a combining mark, a text ending in a mark; NUL runs
        "\u1100", "\u1161\u11a8", "a", "\u0308b", "ä\u0308", "\u0308", "\x00\x00 \x00", "。、!!", "ｱｲｳ",
        # what NFKC changes inside one text: a Hindi nukta that composes, a syllable and a final
        # jamo, a no-break space, marks out of canonical order
        "\u0928\u093c", "\uac00\u11a8", "x\u00a0y", "a\u0301\u0316", "…"]


def batches() -> list[tuple[list[str], list[str]]]:
    rng = random.Random(16)
    out: list[tuple[list[str], list[str]]] = []
    mixed: list[str] = []
    for lang in PARADETOX:
        texts = pieces(lang, 2000, rng) + sentences(lang)[:1000]
        mixed += texts[::3]
        out += [(texts[s:s + 1024], [lang] * len(texts[s:s + 1024])) for s in range(0, len(texts), 1024)]
    rng.shuffle(mixed)
    mixed += EDGE
    langs = [ALL[i % len(ALL)] for i in range(len(mixed))]
    out += [(mixed[s:s + 1024], langs[s:s + 1024]) for s in range(0, len(mixed), 1024)]
    out += [([t], [lang]) for t in EDGE for lang in ("en", "ja", "ko", "ru", "xx")]
    out.append((EDGE, ["de"] * len(EDGE)))
    return out


def compute() -> dict[str, np.ndarray]:
    stacked, ngram = StackedToxicityScorer(), NgramToxicityScorer()
    feats, probs, nprobs, counts, rows, cols, scales = [], [], [], [], [], [], []
    for texts, langs in batches():
        feats.append(stacked.features(texts, langs))
        probs.append(stacked.probabilities(texts, langs))
        nprobs.append(ngram.probabilities(texts, langs))
        counts.append(stacked.lists.counts(texts, langs))
        row, col, scale = featurize(texts, langs, 20)  # what the n-gram builder trains on
        rows.append(row)
        cols.append(col)
        scales.append(scale)
    return {"stacked_features": np.concatenate(feats), "stacked_p": np.concatenate(probs),
            "ngram_p": np.concatenate(nprobs), "wordlist_counts": np.concatenate(counts),
            "featurize_rows": np.concatenate(rows), "featurize_cols": np.concatenate(cols),
            "featurize_scale": np.concatenate(scales)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--against", type=Path)
    args = ap.parse_args(argv)
    now = compute()
    print(f"{len(now['stacked_p']):,} texts scored")
    if args.save:
        np.savez(args.save, **now)
        return 0
    with np.load(args.against) as ref:
        bad = [k for k in now if k not in ref or now[k].dtype != ref[k].dtype or now[k].shape != ref[k].shape
               or now[k].tobytes() != ref[k].tobytes()]
    for k in bad:
        print(f"DIFFERENT: {k}")
    print("bit-identical" if not bad else f"{len(bad)} of {len(now)} arrays differ")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
