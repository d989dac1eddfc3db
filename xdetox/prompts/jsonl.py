"""Plain JSONL prompt sets: ``jsonl:<path or URI>``.

Format: one JSON object per line with

- ``prompt`` (string, required): the prompt text;
- ``language`` (string): an ISO 639-1 code such as ``en`` or ``zh``; required in a single file,
  optional in a folder of ``<language>.jsonl`` files (where it must match the file name);
- ``id`` (string or integer, optional): the prompt id, unique within its language; give the
  same id to translations of the same prompt. Default: ``p-<k:05d>``, k being the row's
  position among its language's rows (so parallel files align by line).

Other fields are ignored. The location is a ``.jsonl`` file, a folder of ``<language>.jsonl``
files, or a ``file://`` / ``s3://`` URI of either.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from xdetox.prompts.base import PromptItem, PromptSetError, check_languages, read_objects, text_field
from xdetox.spec.models import KNOWN_LANGUAGES


def _rows(path: Path, file_language: str | None) -> list[tuple[int, str, str | None, str]]:
    """(line, language, id or None, prompt) for each row of one file."""
    out = []
    for line, obj in read_objects(path):
        prompt = text_field(obj, "prompt", path, line)
        language = obj.get("language", file_language)
        if language is None:
            raise PromptSetError(f"{path}:{line}: field 'language' is required (or name the file <language>.jsonl "
                                 "inside a folder)")
        if not isinstance(language, str) or language not in KNOWN_LANGUAGES:
            raise PromptSetError(f"{path}:{line}: field 'language': unknown language code {language!r}; "
                                 "use ISO 639-1 codes such as en, de, zh")
        if file_language is not None and language != file_language:
            raise PromptSetError(f"{path}:{line}: field 'language' is {language!r} in a file named for "
                                 f"{file_language!r}")
        raw_id = obj.get("id")
        if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or
                                   not str(raw_id).strip()):
            raise PromptSetError(f"{path}:{line}: field 'id' must be a non-empty string or an integer, got {raw_id!r}")
        out.append((line, language, None if raw_id is None else str(raw_id), prompt))
    return out


def load_jsonl(root: Path, source: str, languages: list[str]) -> list[PromptItem]:
    if root.is_dir():
        files = sorted(root.glob("*.jsonl"))
        if not files:
            raise PromptSetError(f"{source}: no .jsonl files in {root}")
        unknown = [p.name for p in files if p.stem not in KNOWN_LANGUAGES]
        if unknown:
            raise PromptSetError(f"{source}: files in a folder must be named <language>.jsonl; "
                                 f"not a language code: {', '.join(unknown)}")
        by_language = {p.stem: p for p in files}
        check_languages(languages, by_language, source, f"files in {root}")
        rows = {lang: (by_language[lang], _rows(by_language[lang], lang)) for lang in languages}
    else:
        all_rows = _rows(root, None)
        grouped: dict[str, list[tuple[int, str, str | None, str]]] = defaultdict(list)
        for row in all_rows:
            grouped[row[1]].append(row)
        check_languages(languages, grouped, source, f"field 'language' of {root}")
        rows = {lang: (root, grouped[lang]) for lang in languages}
    items: list[PromptItem] = []
    for language in languages:
        path, lang_rows = rows[language]
        seen: dict[str, int] = {}
        for k, (line, _lang, raw_id, prompt) in enumerate(lang_rows):
            pid = raw_id if raw_id is not None else f"p-{k:05d}"
            if pid in seen:
                raise PromptSetError(f"{path}:{line}: field 'id': {pid!r} repeats line {seen[pid]} ({language})")
            seen[pid] = line
            items.append(PromptItem(pid, language, prompt))
    return items
