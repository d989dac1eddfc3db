"""JSONL records exchanged between steps, with a schema per kind and readers that name file and line.

generation: one sampled continuation per line. score: the same keys plus the scorer and its
scores. A missing score is ``null`` (with ``score_error`` saying why), never 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class RecordError(ValueError):
    """A malformed JSONL line: names the file (or URI) and 1-based line number."""

    def __init__(self, source: str, line: int, message: str) -> None:
        self.source, self.line, self.message = source, line, message
        super().__init__(f"{source}:{line}: {message}")


class GenerationRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt_id: str
    language: str
    prompt: str = Field(description="the prompt as given in the prompt set")
    prompt_text: str = Field(description="the prompt as shown to the model, after the template")
    sample_index: int = Field(ge=0)
    text: str = Field(description="the continuation only, without the prompt")
    seed: int
    model_id: str
    model_digest: str
    arm: str = Field(description="base or tuned")
    backend: str
    prompt_set: str
    settings: dict[str, Any] = Field(default_factory=dict, description="temperature, top_p, max_new_tokens, ...")
    num_tokens: int | None = None


class OtherScore(BaseModel):
    """One more scorer's score of a row (the spec's ``compare_scorers``), with the same meaning as a
    ScoreRow's own score fields."""

    scorer_id: str
    scorer_version: str
    score_kind: str
    toxicity: float | None = None
    hits: int | None = None
    score_error: str | None = None
    truncated: bool | None = None
    scale: str = "raw"
    calibration: str | None = None
    raw_score: float | None = None

    @property
    def value(self) -> float | None:
        return self.toxicity if self.score_kind == "probability" else (None if self.hits is None else float(self.hits))


class ScoreRow(GenerationRow):
    scorer_id: str
    scorer_version: str
    score_kind: str = Field(description="probability (Perspective, classifier) or hits (lexicon)")
    toxicity: float | None = Field(default=None, description="probability in [0,1]; null when missing")
    hits: int | None = Field(default=None, description="lexicon hits; null when the language has no list")
    spans: list[list[Any]] | None = Field(default=None, description="lexicon matches: [start, end, term]")
    score_error: str | None = None
    truncated: bool | None = Field(default=None, description="classifier: text cut to max_length; null for other scorers")
    perplexity: float | None = None
    scale: str = Field(default="raw", description="'raw' (the scorer's own numbers) or 'calibrated to <reference> "
                       "by map <digest>'; rows written before this field existed are raw")
    calibration: str | None = Field(default=None, description="sha256 of the calibration map applied; null when raw")
    raw_score: float | None = Field(default=None, description="calibrated rows: the scorer's own score before the map")
    other_scores: list[OtherScore] | None = Field(
        default=None, description="the spec's compare_scorers' scores of this text, in their order; null with one scorer")


class PerplexityRow(BaseModel):
    """One continuation's conditional perplexity (the ``perplexity`` step), in its generate shard's
    order; ``evaluate`` joins it to the score row with the same prompt_id and sample_index."""

    model_config = ConfigDict(extra="forbid")
    prompt_id: str
    language: str
    sample_index: int = Field(ge=0)
    perplexity: float | None = Field(default=None, description="null when not computable (empty text)")


M = TypeVar("M", bound=BaseModel)


def iter_objects(lines: Iterable[str | bytes], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank JSONL line; a line that is not a JSON
    object raises RecordError naming ``source`` and the line. Every JSONL reader builds on this."""
    offset = 0  # bytes before this line, when given bytes: to say where undecodable bytes are
    for n, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise RecordError(source, n, f"not UTF-8 text at byte offset {offset + e.start} "
                                             f"(byte 0x{raw[e.start]:02x}): expected JSON lines; a binary file?") from None
            offset += len(raw)
        else:
            line = raw
        if n == 1:
            line = line.removeprefix("\ufeff")  # a UTF-8 BOM, as some editors write: read, not rejected
        if "\x00" in line:
            raise RecordError(source, n, "holds NUL bytes: expected JSON lines; a binary file?")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise RecordError(source, n, f"not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise RecordError(source, n, f"expected a JSON object, got {type(obj).__name__}")
        yield n, obj


def parse_lines(lines: Iterable[str | bytes], source: str, model: type[M] | None = None) -> Iterator[Any]:
    """Parse JSONL lines; each must be a JSON object (valid against ``model`` when given)."""
    for n, obj in iter_objects(lines, source):
        if model is None:
            yield obj
            continue
        try:
            yield model.model_validate(obj)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(x) for x in first.get("loc", ())) or "(row)"
            raise RecordError(source, n, f"field {field}: {first.get('msg')}") from None


def read_jsonl(path: str | Path, model: type[M] | None = None) -> Iterator[Any]:
    p = Path(path)
    with open(p, encoding="utf-8") as f:
        yield from parse_lines(f, str(p), model)


def dumps_row(row: BaseModel | dict[str, Any]) -> str:
    obj = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
    return json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n"


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps_row(row))
            n += 1
    return n
