"""Loading a spec from YAML with errors a person can act on.

Every error names the field path (``generation.temperature``), says what is allowed, and, when the
spec came from a file, the file and line. YAML syntax errors name their line. Nothing here raises a
raw traceback to the CLI: callers catch ``SpecError``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import xdetox.kinds.scorers as scorer_kinds
from xdetox.spec.models import ExperimentSpec


@dataclass(frozen=True)
class SpecProblem:
    path: str
    message: str
    line: int | None = None

    def render(self, source: str | None) -> str:
        where = f"{source}:{self.line}: " if source and self.line else (f"{source}: " if source else "")
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class SpecError(Exception):
    def __init__(self, problems: list[SpecProblem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(p.render(source) for p in problems))


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "extra_forbidden": "unknown field (not allowed here; check the spelling)",
    "missing": "field required",
    "too_short": "must have at least {min_length} item(s)",
}


def _humanize(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in _MESSAGES:
        try:
            nice = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in ctx.items()}
            return _MESSAGES[kind].format(**nice)
        except (KeyError, IndexError):
            pass
    if kind == "literal_error" and "expected" in ctx:
        return f"must be one of {ctx['expected']} (got {err.get('input')!r})"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; allowed: {ctx.get('expected_tags')}"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts and parts[-1] == "scoring" and item in scorer_kinds.names():
            continue  # discriminated-union tag: not part of the user's path
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def _line_index(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path in a YAML document to its 1-based line number (best effort)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    index: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        index.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                index[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, child in enumerate(node.value):
                walk(child, (*path, i))

    if root is not None:
        walk(root, ())
    return index


def _line_for(loc: tuple[Any, ...], index: dict[tuple[Any, ...], int]) -> int | None:
    # drop the scorer-kind tag after "scoring" (a union's branch, not a key the user wrote)
    loc = tuple(x for i, x in enumerate(loc) if not (i and loc[i - 1] == "scoring" and x in scorer_kinds.names()))
    for n in range(len(loc), -1, -1):
        if loc[:n] in index:
            return index[loc[:n]]
    return None


def problems_from_validation(
    exc: ValidationError, index: dict[tuple[Any, ...], int] | None = None, prefix: str = ""
) -> list[SpecProblem]:
    out = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        path = _loc_to_path(loc)
        out.append(
            SpecProblem(
                path=f"{prefix}{path}" if prefix else path,
                message=_humanize(err),  # type: ignore[arg-type]
                line=_line_for(loc, index or {}),
            )
        )
    return out


def parse_yaml(text: str, source: str | None = None) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(e, "problem", None) or str(e)
        raise SpecError([SpecProblem("", f"YAML syntax error: {problem}", line)], source) from None
    if data is None:
        raise SpecError([SpecProblem("", "the spec is empty")], source)
    if not isinstance(data, dict):
        raise SpecError([SpecProblem("", "the spec must be a mapping of fields at the top level", 1)], source)
    return data


def validate_spec(data: dict[str, Any], text: str | None = None, source: str | None = None) -> ExperimentSpec:
    index = _line_index(text) if text else {}
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from_validation(exc, index), source) from None
    # Every matrix setting must itself be a valid spec: check them all now, not at plan time.
    problems: list[SpecProblem] = []
    for path in spec.matrix:
        if not _path_exists(data, path):
            problems.append(SpecProblem(f"matrix.{path}", "no such field in the spec", index.get(("matrix", path))))
    for i, variant in enumerate(spec.variants):
        for path in variant:
            if path != "label" and not _path_exists(data, path):
                problems.append(SpecProblem(f"variants[{i}].{path}", "no such field in the spec",
                                            index.get(("variants", i, path))))
    if problems:
        raise SpecError(problems, source)
    expand_matrix(spec)  # raises SpecError naming the setting if one is invalid
    return spec


def _path_exists(data: dict[str, Any], path: str) -> bool:
    from xdetox.spec.models import ExperimentSpec as _E

    head, *rest = path.split(".")
    if head not in _E.model_fields:
        return False
    model: Any = _E.model_fields[head].annotation
    for part in rest:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            # Optional[Model] or a union: look through its args for a model with that field.
            args = getattr(model, "__args__", ())
            found = next((a for a in args if hasattr(a, "model_fields") and part in a.model_fields), None)
            if found is None:
                return False
            model = found.model_fields[part].annotation
            continue
        if part not in fields:
            return False
        model = fields[part].annotation
    return True


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = data
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value


def expand_matrix(spec: ExperimentSpec) -> list[tuple[dict[str, Any], ExperimentSpec]]:
    """The settings of a spec: the Cartesian product of its matrix, each a full valid spec.

    Returns (overrides, spec) pairs; a spec without a matrix is one setting with no overrides.
    """
    if not spec.matrix and not spec.variants:
        return [({}, spec)]
    base = spec.model_dump(mode="json", exclude={"matrix", "variants"})
    paths = sorted(spec.matrix)
    out = []
    variants = spec.variants or [{}]
    for variant, combo in itertools.product(variants, itertools.product(*(spec.matrix[p] for p in paths))):
        overrides = {**variant, **dict(zip(paths, combo, strict=True))}
        data = _deep_copy(base)
        for path, value in overrides.items():
            if path != "label":
                _set_path(data, path, value)
        try:
            out.append((overrides, ExperimentSpec.model_validate(data)))
        except ValidationError as exc:
            where = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            raise SpecError(
                [SpecProblem(p.path, f"{p.message} (in matrix setting {where})") for p in problems_from_validation(exc)]
            ) from None
    return out


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


def load_spec(path: str | Path) -> ExperimentSpec:
    p = Path(path)
    source = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecProblem("", "no such file")], source) from None
    except UnicodeDecodeError as e:
        raise SpecError([SpecProblem("", f"not UTF-8 text ({e.reason} at byte {e.start})")], source) from None
    data = parse_yaml(text, source)
    return validate_spec(data, text, source)


def load_spec_text(text: str, source: str | None = None) -> ExperimentSpec:
    return validate_spec(parse_yaml(text, source), text, source)
