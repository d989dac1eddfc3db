"""Hit rates of two lexicon versions on ParaDetox's toxic and neutral sides, per language.

    python scripts/lexicon_paradetox_check.py [--old 2] [--new 3] [--json OUT]

The check a new word-list version is judged by (never RTP-LX): the share of ParaDetox's toxic
sentences with at least one hit should rise, the share of its neutral rewrites (the same content,
toxic words removed) should barely move. All pairs of every split are used: the lists are
hand-written, nothing is fitted on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xdetox.scoring.lexicon import LexiconToxicityScorer  # noqa: E402
from xdetox.scoring.ngram_build import paradetox_pairs  # noqa: E402


def hit_share(lex: LexiconToxicityScorer, texts: list[str], lang: str) -> float:
    return sum(bool(lex.match(t, lang)) for t in texts) / len(texts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", type=int, default=2)
    ap.add_argument("--new", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    old, new = LexiconToxicityScorer(version=args.old), LexiconToxicityScorer(version=args.new)
    out: dict[str, dict[str, float | int]] = {}
    print(f"lang     n  toxic v{args.old}  toxic v{args.new}  neutral v{args.old}  neutral v{args.new}")
    for lang, pairs in sorted(paradetox_pairs().items()):
        tox = [p["toxic_sentence"] for p in pairs]
        neu = [p["neutral_sentence"] for p in pairs]
        row = {"n": len(pairs), "toxic_old": hit_share(old, tox, lang), "toxic_new": hit_share(new, tox, lang),
               "neutral_old": hit_share(old, neu, lang), "neutral_new": hit_share(new, neu, lang)}
        out[lang] = row
        print(f"{lang:4} {row['n']:5}  {row['toxic_old']:8.3f}  {row['toxic_new']:8.3f}  "
              f"{row['neutral_old']:10.3f}  {row['neutral_new']:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
