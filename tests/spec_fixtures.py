"""The smoke spec with another scoring section, for tests of one scorer that keep the smoke's
everything else (the smoke itself scores with the stacked scorer and lexicon v2 beside it)."""

from __future__ import annotations

import re
from pathlib import Path

SMOKE = Path(__file__).resolve().parents[1] / "jobs" / "smoke.yaml"
SMOKE_SCORING = "\nscoring:\n  - kind: stacked\n  - kind: lexicon\n    version: 2\n"


def smoke_with_scoring(scoring: str) -> str:
    """The smoke spec's text with ``scoring`` (a YAML block starting ``scoring:``) in place of its own,
    and without its ``metrics.headline`` (average toxicity: a lexicon's hits have none), so the
    scorer's default headline applies."""
    text = SMOKE.read_text(encoding="utf-8")
    assert SMOKE_SCORING in text, "the smoke's scoring section changed: update tests/spec_fixtures.py"
    text = text.replace(SMOKE_SCORING, "\n" + scoring)
    return re.sub(r"\n  headline: [a-z_]+\n", "\n", text)
