"""Prompt sets: load a spec's PromptSet into (prompt id, language, prompt) items.

Sources (PromptSet.source):

- ``bundled:xling-prompts-200``: the vendored parallel set, ids ``xling-<k:04d>`` in every language;
- ``rtp-lx:<path or URI>``: RTP-LX files (v0.2 or the later release), read where the user keeps
  them; ids ``rtplx-<Index:05d>``;
- ``jsonl:<path or URI>``: plain JSONL, fields ``id``/``prompt``/``language`` (see prompts.jsonl);
- ``paradetox:bundled`` or ``paradetox:<path or URI>``: ParaDetox sentences
  (PromptSet.paradetox_split and paradetox_side).

Items come in the order of PromptSet.languages, each language in source order, at most
PromptSet.limit_per_language per language. A language the set lacks is an error naming the file
or field that was searched.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from xdetox.prompts.base import PromptItem, PromptSetError
from xdetox.prompts.sources import localize

BUNDLED_SETS = ("xling-prompts-200",)


def render_prompt(template: str, prompt: str) -> str:
    """The prompt as shown to the model. Only ``{prompt}`` is replaced, so other braces in a
    template (JSON, code) are kept as written."""
    return template.replace("{prompt}", prompt)


def load_prompt_set(prompt_set: Any) -> list[PromptItem]:
    """Load a PromptSet (the spec model or its dumped dict)."""
    from xdetox.spec.models import PromptSet

    ps = prompt_set if isinstance(prompt_set, PromptSet) else PromptSet.model_validate(prompt_set)
    kind, _, location = ps.source.partition(":")
    what = f"prompts[{ps.id}].source"
    languages = list(ps.languages)
    if kind == "bundled":
        if location not in BUNDLED_SETS:
            raise PromptSetError(f"{what}: unknown bundled set {location!r}; available: {', '.join(BUNDLED_SETS)}")
        from xdetox.prompts.xling import load_xling

        items = load_xling(ps.source, languages)
    elif kind == "rtp-lx":
        from xdetox.prompts.rtplx import load_rtplx

        with tempfile.TemporaryDirectory(prefix="xdetox-rtplx-") as scratch:
            items = list(load_rtplx(localize(location, what), ps.source, languages, Path(scratch)))
    elif kind == "jsonl":
        from xdetox.prompts.jsonl import load_jsonl

        items = load_jsonl(localize(location, what), ps.source, languages)
    elif kind == "paradetox":
        from xdetox.prompts.paradetox import BUNDLED_DIR, load_paradetox

        root = BUNDLED_DIR if location == "bundled" else localize(location, what)
        if location == "bundled" and not root.is_dir():
            raise PromptSetError(f"{what}: the bundled ParaDetox data is missing from {root}")
        items = load_paradetox(root, ps.source, languages, ps.paradetox_split, ps.paradetox_side,
                               ps.paradetox_split_scheme)
    else:  # PromptSet's validator already refuses other prefixes
        raise PromptSetError(f"{what}: unknown source kind {kind!r}")
    if ps.limit_per_language is not None:
        items = _limit(items, ps.limit_per_language)
    return items


def _limit(items: list[PromptItem], n: int) -> list[PromptItem]:
    counts: dict[str, int] = {}
    out = []
    for item in items:
        if counts.get(item.language, 0) < n:
            counts[item.language] = counts.get(item.language, 0) + 1
            out.append(item)
    return out


__all__ = ["BUNDLED_SETS", "PromptItem", "PromptSetError", "load_prompt_set", "render_prompt"]
