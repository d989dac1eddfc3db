"""ParaDetox sentences as prompts: ``paradetox:bundled`` or ``paradetox:<path or URI>``.

Rows follow the multilingual ParaDetox reconstruction (``<lang>.reconstructed.jsonl`` or
``<lang>.jsonl``): ``orig_index``, ``toxic_sentence``, ``neutral_sentence`` and the split tags
``split_hf_shuffle42`` / ``split_np_perm42``. PromptSet.paradetox_side picks the sentence,
PromptSet.paradetox_split the rows under PromptSet.paradetox_split_scheme (``hf_shuffle42`` by
default, as in training). Prompt id: ``paradetox-<orig_index:04d>``.
"""

from __future__ import annotations

from pathlib import Path

from xdetox.prompts.base import PromptItem, PromptSetError, check_languages, read_objects, text_field

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "paradetox"
SPLIT_FIELD = "split_hf_shuffle42"  # the default scheme's tag


def _files(root: Path) -> dict[str, Path]:
    if root.is_file():
        return {root.name.split(".")[0]: root}
    out: dict[str, Path] = {}
    for p in sorted(root.glob("*.jsonl")):
        out.setdefault(p.name.split(".")[0], p)
    return out


def load_paradetox(root: Path, source: str, languages: list[str], split: str, side: str,
                   scheme: str = "hf_shuffle42") -> list[PromptItem]:
    split_field = f"split_{scheme}"
    files = _files(root)
    if not files:
        raise PromptSetError(f"{source}: no <language>.reconstructed.jsonl files in {root}")
    check_languages(languages, files, source, f"files in {root}")
    field = f"{side}_sentence"
    items: list[PromptItem] = []
    for language in languages:
        path = files[language]
        seen: dict[int, int] = {}
        for line, obj in read_objects(path):
            tag = obj.get(split_field)
            if tag not in {"train", "test"}:
                raise PromptSetError(f"{path}:{line}: field {split_field!r} must be 'train' or 'test', got {tag!r}")
            if split != "all" and tag != split:
                continue
            index = obj.get("orig_index")
            if not isinstance(index, int) or isinstance(index, bool):
                raise PromptSetError(f"{path}:{line}: field 'orig_index' must be an integer, got {index!r}")
            if index in seen:
                raise PromptSetError(f"{path}:{line}: field 'orig_index' {index} repeats line {seen[index]}")
            seen[index] = line
            items.append(PromptItem(f"paradetox-{index:04d}", language, text_field(obj, field, path, line),
                                    {"split": tag}))
    return items
