"""Print lexicon-version-5 hits and stacked-scorer stem neighbours for one language's check file.

    python scripts/lexicon_v5_probe.py LANG    (after scripts/vendor_lexicons.py)

Reads tests/data/lexicon-v5/LANG.json ({"insults": [[text, entry], ...], "benign": [text, ...]})
and prints, for each sentence, the version-5 spans; an insult without its entry or a benign
sentence with any hit is marked FAIL. A curation aid, not part of any build.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from xdetox.scoring.lexicon import LexiconToxicityScorer  # noqa: E402


def main(lang: str) -> int:
    root = Path(__file__).resolve().parents[1]
    checks = json.loads((root / "tests" / "data" / "lexicon-v5" / f"{lang}.json").read_text("utf-8"))
    lex = LexiconToxicityScorer(version=5)
    bad = 0
    for text, entry in checks["insults"]:
        found = [t for _, _, t in (lex.match(text, lang) or [])]
        ok = entry in found
        bad += not ok
        print(("ok  " if ok else "FAIL"), "insult", repr(text), "->", found, "want", repr(entry))
    for text in checks["benign"]:
        found = [t for _, _, t in (lex.match(text, lang) or [])]
        bad += bool(found)
        print(("FAIL" if found else "ok  "), "benign", repr(text), "->", found)
    print(f"{bad} failures")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
