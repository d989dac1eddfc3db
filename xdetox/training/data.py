"""Training data adapters: every supported format becomes rows TRL understands.

DPO rows are ``{"prompt", "chosen", "rejected"}``; SFT rows are ``{"prompt", "completion"}``.
Everything is read and validated before a model is loaded, so a bad file (missing field, empty
file, malformed line) fails with its file and line before any training starts.

Formats (``training.data.format``):
- ``pairs-jsonl``: ``prompt``/``chosen``/``rejected`` (SFT uses prompt -> chosen).
- ``lee-toxicity-pairs``: Lee et al. 2024's pairs: ``prompt_text``, ``unpert_gen_text`` (chosen),
  ``pert_gen_text`` (rejected). A continuation that repeats its prompt is cut after the prompt,
  with a warning: DPO must compare continuations, not the shared prompt.
- ``paradetox``: toxic/neutral sentence pairs (see :func:`paradetox_dpo_row` and
  :func:`paradetox_sft_row`), with language, split and split scheme.
- ``sft-jsonl``: ``prompt``/``completion`` (SFT only).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xdetox.training import paradetox
from xdetox.training.jsonl import DataFileError, read_jsonl

# Languages written without spaces: their prompts end with "\n" so that byte-level BPE cannot
# merge across the prompt/completion boundary (FACTS: TRL warns and drops the prompt's end).
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "km", "lo", "my"})
SFT_TEMPLATE = "{toxic}\n"  # paper 2's SFT: the toxic sentence, then its neutral rewrite


@dataclass
class TrainSet:
    rows: list[dict[str, str]]
    method: str
    sources: list[str]
    read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    languages: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"n_rows": len(self.rows), "read": self.read, "dropped": dict(self.dropped),
                "languages": dict(self.languages), "sources": self.sources, "warnings": self.warnings[:20]}


def _drop(ts: TrainSet, why: str) -> None:
    ts.dropped[why] = ts.dropped.get(why, 0) + 1


def _local(path: str) -> Path:
    """A local path for a file or folder given as a path, file:// or s3:// URI (the store's localize)."""
    from xdetox.store.localize import LocationError, localize

    try:
        return localize(path, "data", must_exist=False)  # _files names what is missing, and why
    except LocationError as e:
        raise DataFileError(f"{path}: {e}") from None


def _files(path: str, languages: list[str]) -> list[tuple[str, Path]]:
    """(language, file) pairs: a single file (language = the first listed) or <lang>.jsonl files."""
    p = _local(path)
    if p.is_dir():
        out = []
        for lang in languages:
            f = p / f"{lang}.jsonl"
            if not f.exists():
                raise DataFileError(f"{path}: no file {lang}.jsonl for language {lang!r}")
            out.append((lang, f))
        return out
    if not p.exists():
        raise DataFileError(f"{path}: file not found")
    return [(languages[0], p)]


def common_prefix_prompt(toxic: str, neutral: str, language: str) -> tuple[str, str, str]:
    """Split a toxic/neutral pair into (prompt, neutral rest, toxic rest) at their longest common
    prefix, cut back to a word boundary: a prompt ending inside a word would let BPE merge across
    the prompt/completion boundary. No common prefix gives an empty prompt."""
    n = 0
    for a, b in zip(toxic, neutral, strict=False):
        if a != b:
            break
        n += 1
    if language in NO_SPACE_LANGUAGES:
        return (toxic[:n] + "\n", neutral[n:], toxic[n:]) if n else ("", neutral, toxic)

    def inside_word(s: str, i: int) -> bool:
        return 0 < i < len(s) and s[i - 1].isalnum() and s[i].isalnum()

    if inside_word(toxic, n) or inside_word(neutral, n):
        n = toxic.rfind(" ", 0, n)
    while n > 0 and toxic[n - 1].isspace():
        n -= 1
    if n <= 0:
        return "", neutral, toxic
    return toxic[:n], neutral[n:], toxic[n:]


def paradetox_dpo_row(pair: paradetox.ParaPair) -> dict[str, str]:
    """prompt = the words both sentences start with; chosen = the neutral rest, rejected = the
    toxic rest. With nothing in common the prompt is empty; the trainer puts the BOS text there."""
    prompt, chosen, rejected = common_prefix_prompt(pair.toxic, pair.neutral, pair.language)
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def paradetox_sft_row(pair: paradetox.ParaPair, template: str = SFT_TEMPLATE) -> dict[str, str]:
    """prompt = ``template`` filled with the toxic sentence (``{toxic}``) or the neutral one
    (``{neutral}``: paper 2's pooled mT5 script reads "detoxify: <neutral>" and writes it back);
    paper 2's per-model recipes: BLOOM's instruction, Aya's empty prompt = neutral sentence only;
    completion = the neutral sentence."""
    return {"prompt": template.format(toxic=pair.toxic, neutral=pair.neutral), "completion": pair.neutral}


def _strip_repeat(prompt: str, text: str) -> tuple[str, bool]:
    if prompt and text.startswith(prompt):
        return text[len(prompt):], True
    return text, False


#: paper 2's language order (LANGUAGES in scripts/11_finetune_all_percentage*.py): the order in
#: which their pooled scripts draw each language's share from one seeded random stream
PAPER2_LANGUAGES = ("en", "es", "de", "zh", "ar", "hi", "uk", "ru", "am")


def paper2_fraction_picks(sizes: dict[str, int], fraction: float) -> dict[str, list[int]]:
    """Row indices per language as paper 2's pooled scripts pick them: ``np.random.seed(42)`` once,
    then for each language in their order ``np.random.choice(range(n), size=int(n * pct / 100),
    replace=False)`` over its n (300) train rows, in the datasets shuffle(seed=42) order. One stream
    serves all nine languages, so each language's draw depends on those before it: a language the
    spec leaves out is still drawn (with 300 rows, their scripts' size) to keep the stream aligned."""
    import numpy as np

    unknown = sorted(set(sizes) - set(PAPER2_LANGUAGES))
    if unknown:
        raise ValueError(f"training.data.languages: {', '.join(unknown)} not among paper 2's languages; its "
                         "pooled sampling is defined for " + ", ".join(PAPER2_LANGUAGES))
    rng = np.random.RandomState(42)  # what np.random.seed(42) seeds: the legacy global generator
    picks: dict[str, list[int]] = {}
    for lang in PAPER2_LANGUAGES:
        n = sizes.get(lang, 300)
        k = int(n * fraction + 1e-9)  # their int(300 * pct / 100), safe from a float just below an integer
        drawn = rng.choice(list(range(n)), size=k, replace=False).tolist()
        if lang in sizes:
            picks[lang] = [int(i) for i in drawn]
    return picks


def load_training_set(data: dict[str, Any], method: str, sft_template: str | None = None,
                      fraction_sampling: str | None = None) -> TrainSet:
    """Read, validate, convert and filter the training data named by a TrainingData dump.

    ``fraction_sampling`` (a recipe setting): "first" (default) keeps the first ceil(n * fraction)
    rows of each language in the split's order; "paper2" draws them as paper 2's pooled scripts do
    (``paper2_fraction_picks``)."""
    if method not in {"dpo", "sft"}:
        raise ValueError(f"training.method {method!r} has no training data")
    fmt = data["format"]
    languages: list[str] = list(data.get("languages") or ["en"])
    ts = TrainSet(rows=[], method=method, sources=[])
    per_language: list[tuple[str, list[dict[str, str]]]] = []
    if fmt == "paradetox":
        folder = paradetox.resolve_folder(data["path"])
        scheme = data.get("split_scheme", "hf_shuffle42")
        for lang in languages:
            pairs = paradetox.read_language(folder, lang, scheme if data.get("split", "train") != "all" else None)
            ts.read += len(pairs)
            ts.sources.append(str(paradetox.language_file(folder, lang)))
            chosen = paradetox.select(pairs, data.get("split", "train"), scheme)
            make: Callable[[paradetox.ParaPair], dict[str, str]] = (
                paradetox_dpo_row if method == "dpo"
                else functools.partial(paradetox_sft_row, template=SFT_TEMPLATE if sft_template is None else sft_template)
            )
            per_language.append((lang, [make(p) for p in chosen]))
    else:
        need = {
            "pairs-jsonl": ("prompt", "chosen", "rejected") if method == "dpo" else ("prompt", "chosen"),
            "lee-toxicity-pairs": ("prompt_text", "unpert_gen_text", "pert_gen_text") if method == "dpo"
            else ("prompt_text", "unpert_gen_text"),
            "sft-jsonl": ("prompt", "completion"),
        }[fmt]
        if fmt == "sft-jsonl" and method == "dpo":
            raise DataFileError(f"{data['path']}: format sft-jsonl has no rejected texts; use method sft, "
                                "or pairs-jsonl / lee-toxicity-pairs / paradetox for dpo")
        for lang, f in _files(data["path"], languages):
            ts.sources.append(str(f))
            rows: list[dict[str, str]] = []
            repeats = 0
            for lineno, obj in read_jsonl(f, need):
                ts.read += 1
                if fmt == "pairs-jsonl":
                    row = {"prompt": obj["prompt"], "chosen": obj["chosen"], "rejected": obj.get("rejected", "")}
                elif fmt == "lee-toxicity-pairs":
                    prompt = obj["prompt_text"]
                    chosen, r1 = _strip_repeat(prompt, obj["unpert_gen_text"])
                    rejected, r2 = _strip_repeat(prompt, obj.get("pert_gen_text", ""))
                    if r1 or r2:
                        repeats += 1
                        if repeats <= 3:
                            ts.warnings.append(f"{f}:{lineno}: continuation repeats its prompt; cut after the prompt")
                    row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
                else:
                    row = {"prompt": obj["prompt"], "completion": obj["completion"]}
                if method == "sft" and "completion" not in row:
                    row = {"prompt": row["prompt"], "completion": row["chosen"]}
                rows.append(row)
            if repeats:
                ts.warnings.append(f"{f}: {repeats} rows had a continuation repeating its prompt")
            per_language.append((lang, rows))

    fraction = float(data.get("fraction", 1.0))
    picks: dict[str, list[int]] | None = None
    if fraction_sampling == "paper2" and fraction < 1.0 and fmt == "paradetox":
        picks = paper2_fraction_picks({lang: len(rows) for lang, rows in per_language}, fraction)
    elif fraction_sampling not in {None, "first", "paper2"}:
        raise ValueError(f"fraction_sampling must be first or paper2, got {fraction_sampling!r}")
    for lang, rows in per_language:
        kept = []
        taken = ([rows[i] for i in picks[lang]] if picks is not None
                 else rows[: max(1, math.ceil(len(rows) * fraction))] if rows else [])
        for row in taken:
            if method == "dpo":
                if not row["chosen"].strip() or not row["rejected"].strip():
                    _drop(ts, "empty completion")
                    continue
                if row["chosen"] == row["rejected"]:
                    _drop(ts, "chosen equals rejected")
                    continue
            elif not row["completion"].strip():
                _drop(ts, "empty completion")
                continue
            kept.append(row)
        ts.languages[lang] = len(kept)
        ts.rows.extend(kept)
    if data.get("max_rows"):
        ts.rows = ts.rows[: int(data["max_rows"])]
    if not ts.rows:
        raise DataFileError(f"{data['path']}: no training rows left after filtering "
                            f"(read {ts.read}, dropped {ts.dropped or 'none'})")
    return ts
