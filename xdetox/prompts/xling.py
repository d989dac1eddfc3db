"""The bundled parallel set ``bundled:xling-prompts-200`` (see xdetox/data/xling-prompts-200/README.md).

Line k of every language file is the same prompt: its id is ``xling-<k:04d>`` in every language.
"""

from __future__ import annotations

from pathlib import Path

from xdetox.prompts.base import PromptItem, PromptSetError, check_languages, read_objects, text_field

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "xling-prompts-200"
EXPECTED_ROWS = 200


def _file(language: str) -> Path:
    return DATA_DIR / f"dpo_toxicity_pairwise_{language}_200.jsonl"


def available_languages() -> list[str]:
    return sorted(p.name.split("_")[3] for p in DATA_DIR.glob("dpo_toxicity_pairwise_*_200.jsonl"))


def load_xling(source: str, languages: list[str]) -> list[PromptItem]:
    check_languages(languages, available_languages(), source, f"files in {DATA_DIR}")
    items: list[PromptItem] = []
    for language in languages:
        path = _file(language)
        rows = [(line, text_field(obj, "Prompt", path, line)) for line, obj in read_objects(path)]
        if len(rows) != EXPECTED_ROWS:
            # The ids are positions: a short file would silently misalign languages.
            raise PromptSetError(f"{path}: {len(rows)} prompts, expected {EXPECTED_ROWS} (index-aligned set)")
        items.extend(PromptItem(f"xling-{k:04d}", language, text) for k, (_line, text) in enumerate(rows))
    return items
