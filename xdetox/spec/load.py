"""Loading a spec from YAML with errors a person can act on.

Every error names the field path (``generation.temperature``), says what is allowed, and, when the
spec came from a file, the file and line. YAML syntax errors name their line. Nothing here raises a
raw traceback to the CLI: callers catch ``SpecError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xdetox.spec.errors import SpecError, SpecProblem, _line_for, problems_from_validation
from xdetox.spec.matrix import _path_exists, expand_matrix
from xdetox.spec.models import ExperimentSpec

__all__ = ["SpecError", "SpecProblem", "_line_for", "expand_matrix", "load_spec", "load_spec_text",
           "problems_from_validation", "validate_spec"]


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
        listed = isinstance(data.get("scoring"), list)  # errors name scoring[i] as written
        raise SpecError(problems_from_validation(exc, index, scoring_list=listed), source) from None
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
