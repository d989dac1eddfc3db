"""Lexicon scorer throughput: texts per second on one core, per language, on realistic texts.

    python bench/bench_lexicon.py [--rows 20000] [--lexicon-version 3] [--json out.json]

Texts are the bundled multilingual ParaDetox sentences (toxic and neutral sides), cut into
continuation-sized pieces of 5-40 words (zh: 10-60 characters) as a model would generate them.
Runs in this process only (one core); rates are per CPU second of this process (on a busy
machine wall time overstates the cost); loading each language's list (and starting jieba for
Chinese, about 2-4 s) is timed separately as ``warmup_s``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xdetox.records import GenerationRow  # noqa: E402
from xdetox.scoring.lexicon import LexiconToxicityScorer  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "xdetox" / "data" / "paradetox"
EXTRA = Path(__file__).resolve().parents[2] / "shared" / "data" / "multilingual-paradetox"


def sentences(lang: str) -> list[str]:
    path = DATA / f"{lang}.reconstructed.jsonl"
    if not path.exists():
        path = EXTRA / f"{lang}.reconstructed.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text("utf-8").splitlines():
        obj = json.loads(line)
        out += [obj["toxic_sentence"], obj["neutral_sentence"]]
    return out


def pieces(lang: str, n: int, rng: random.Random) -> list[str]:
    sents = sentences(lang)
    if not sents:
        return []
    out = []
    while len(out) < n:
        text = " ".join(rng.choice(sents) for _ in range(3))
        if lang == "zh":
            k = rng.randint(10, 60)
            s = rng.randrange(max(1, len(text) - k))
            out.append(text[s:s + k])
        else:
            words = text.split()
            k = rng.randint(5, 40)
            s = rng.randrange(max(1, len(words) - k))
            out.append(" ".join(words[s:s + k]))
    return out


def row(text: str, lang: str, i: int) -> GenerationRow:
    return GenerationRow(prompt_id=f"p{i}", language=lang, prompt="", prompt_text="", sample_index=0, text=text,
                         seed=0, model_id="m", model_digest="d", arm="base", backend="bench", prompt_set="ps")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000, help="texts per language")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--lexicon-version", type=int, default=3, help="1: what the nightly pins; 3: the default")
    args = ap.parse_args(argv)
    rng = random.Random(0)
    scorer = LexiconToxicityScorer(version=args.lexicon_version)
    results = {}
    total_rows = total_s = 0.0
    for lang in ("en", "de", "es", "ru", "uk", "ar", "hi", "am", "zh"):
        texts = pieces(lang, args.rows, rng)
        if not texts:
            continue
        rows = [row(t, lang, i) for i, t in enumerate(texts)]
        t0 = time.perf_counter()
        scorer.prepare(lang)
        warm = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        res = scorer.score_batch(rows)
        # CPU time of this process is the per-core figure; wall time only equals it on an idle machine
        dt, wall = time.process_time() - c0, time.perf_counter() - t0
        hits = sum(r.hits or 0 for r in res)
        results[lang] = {"texts": len(rows), "cpu_seconds": round(dt, 3), "wall_seconds": round(wall, 3),
                         "texts_per_s": round(len(rows) / dt),
                         "chars_per_s": round(sum(map(len, texts)) / dt), "hit_rate": round(hits / len(rows), 4),
                         "warmup_s": round(warm, 3)}
        total_rows += len(rows)
        total_s += dt
        print(f"{lang:3} {len(rows) / dt:10,.0f} texts/s  {results[lang]['chars_per_s']:12,} chars/s  "
              f"hits/text {hits / len(rows):.3f}  warm-up {warm:.2f}s")
    overall = round(total_rows / total_s)
    print(f"all {overall:10,} texts/s per core ({int(total_rows):,} texts, CPU time)")
    if args.json:
        args.json.write_text(json.dumps({"per_language": results, "texts_per_s_per_core": overall}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
