"""Multilingual ParaDetox: toxic/neutral sentence pairs per language, with paper 2's two splits.

A folder holds ``<lang>.jsonl`` or ``<lang>.reconstructed.jsonl`` files; each row has
``toxic_sentence``, ``neutral_sentence`` and the split tags ``split_hf_shuffle42`` /
``split_np_perm42`` ("train" or "test"). ``bundled:paradetox`` is the vendored copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xdetox.training.jsonl import DataFileError, read_jsonl

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "data" / "paradetox"
SPLIT_SCHEMES = ("hf_shuffle42", "np_perm42")


@dataclass(frozen=True)
class ParaPair:
    language: str
    toxic: str
    neutral: str
    split: dict[str, str]  # scheme -> "train" | "test"
    source: str  # file:line
    position: dict[str, int]  # scheme -> the row's position in paper 2's shuffled order


def resolve_folder(path: str) -> Path:
    if path in {"bundled:paradetox", "bundled:multilingual-paradetox"}:
        return BUNDLED_DIR
    if path.startswith("bundled:"):
        raise DataFileError(f"unknown bundled data set {path!r}; available: bundled:paradetox")
    return Path(path)


def language_file(folder: Path, language: str) -> Path:
    for name in (f"{language}.jsonl", f"{language}.reconstructed.jsonl"):
        if (folder / name).exists():
            return folder / name
    available = sorted({p.name.split(".")[0] for p in folder.glob("*.jsonl")}) if folder.is_dir() else []
    raise DataFileError(
        f"{folder}: no ParaDetox file for language {language!r} (looked for {language}.jsonl, "
        f"{language}.reconstructed.jsonl); languages there: {', '.join(available) or 'none'}"
    )


def read_language(folder: Path, language: str, need_split: str | None = None) -> list[ParaPair]:
    """All pairs of one language, validated. ``need_split`` (a scheme) makes its tag required."""
    path = language_file(folder, language)
    required = ("toxic_sentence", "neutral_sentence") + ((f"split_{need_split}",) if need_split else ())
    out = []
    for lineno, row in read_jsonl(path, required):
        split = {s: row[f"split_{s}"] for s in SPLIT_SCHEMES if f"split_{s}" in row}
        for scheme, value in split.items():
            if value not in {"train", "test"}:
                raise DataFileError(f"{path}:{lineno}: field 'split_{scheme}' must be train or test, got {value!r}")
        if not row["toxic_sentence"].strip() or not row["neutral_sentence"].strip():
            raise DataFileError(f"{path}:{lineno}: toxic_sentence and neutral_sentence must not be empty")
        position = {s: row[f"pos_{s}"] for s in SPLIT_SCHEMES if isinstance(row.get(f"pos_{s}"), int)}
        out.append(ParaPair(language, row["toxic_sentence"].strip(), row["neutral_sentence"].strip(), split,
                            f"{path}:{lineno}", position))
    return out


def select(pairs: list[ParaPair], split: str, scheme: str) -> list[ParaPair]:
    """The rows of ``split`` under ``scheme``, in the scheme's shuffled order when the file has it
    (so that a fraction takes the same first rows as paper 2), else in file order."""
    chosen = list(pairs) if split == "all" else [p for p in pairs if p.split.get(scheme) == split]
    if split != "all" and all(scheme in p.position for p in chosen):
        chosen.sort(key=lambda p: p.position[scheme])
    return chosen
