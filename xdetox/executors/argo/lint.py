"""Semantic lint for Argo manifests: what the JSON schema (and Hera) cannot see.

Rules, each with a stable id used in messages and tests:
  entrypoint       spec.entrypoint names a template
  unique-template  template names are unique
  unique-task      task names are unique within a DAG
  task-template    every task names an existing template
  dependency       every dependency (``dependencies`` and ``depends``) names a task of the same DAG
  cycle            the DAG has no cycle
  param-workflow   every ``{{workflow.parameters.X}}`` is a declared workflow argument
  param-input      every ``{{inputs.parameters.X}}`` is declared in its template's inputs
  task-args        a task passes every input without a default, and nothing the template lacks
  item             ``{{item}}`` is only used by tasks with withItems/withParam/withSequence
"""

from __future__ import annotations

import json
import re
from typing import Any

_WF_PARAM = re.compile(r"\{\{\s*workflow\.parameters\.([A-Za-z0-9_.-]+?)\s*\}\}")
_IN_PARAM = re.compile(r"\{\{\s*inputs\.parameters\.([A-Za-z0-9_.-]+?)\s*\}\}")
_ITEM = re.compile(r"\{\{\s*item(\.[A-Za-z0-9_-]+)?\s*\}\}")
_DEPENDS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z]+)?")


def _workflow_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest.get("spec") or {}
    return spec.get("workflowSpec", spec) if manifest.get("kind") == "CronWorkflow" else spec


def _strings(node: Any) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', json.dumps(node))


def _depends_names(expr: str) -> list[str]:
    out = []
    for tok in _DEPENDS_NAME.findall(expr.replace("&&", " ").replace("||", " ").replace("!", " ")):
        out.append(tok.split(".", 1)[0])
    return out


def _cycle(deps: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in deps.get(n, []):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d in deps and state.get(d) is None:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in deps:
        if state.get(n) is None:
            found = visit(n)
            if found:
                return found
    return None


def lint(manifest: dict[str, Any]) -> list[str]:
    """Every problem as '[rule] where: what'; empty when the manifest is sound."""
    problems: list[str] = []
    spec = _workflow_spec(manifest)
    templates: list[dict[str, Any]] = spec.get("templates") or []
    names = [t.get("name", "") for t in templates]
    by_name = {t.get("name"): t for t in templates}
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"[unique-template] templates: name {n!r} is used {names.count(n)} times")
    ref = spec.get("workflowTemplateRef")
    entry = spec.get("entrypoint")
    if not ref and entry not in by_name:
        problems.append(f"[entrypoint] spec.entrypoint: {entry!r} is not a template (have: {', '.join(names)})")
    declared = {p.get("name") for p in (spec.get("arguments") or {}).get("parameters") or []}
    for n in sorted(set(_WF_PARAM.findall(" ".join(_strings(templates))))):
        if n not in declared and not ref:
            problems.append(f"[param-workflow] {{{{workflow.parameters.{n}}}}} is used but not declared in spec.arguments")
    for t in templates:
        tname = t.get("name")
        inputs = {p.get("name"): p for p in (t.get("inputs") or {}).get("parameters") or []}
        body = {k: v for k, v in t.items() if k not in {"dag", "steps"}}
        for n in sorted(set(_IN_PARAM.findall(" ".join(_strings(body))))):
            if n not in inputs:
                problems.append(f"[param-input] template {tname!r}: {{{{inputs.parameters.{n}}}}} is not declared")
        dag = t.get("dag")
        if not dag:
            continue
        tasks = dag.get("tasks") or []
        tnames = [x.get("name") for x in tasks]
        for n in sorted({n for n in tnames if tnames.count(n) > 1}):
            problems.append(f"[unique-task] template {tname!r}: task name {n!r} is used {tnames.count(n)} times")
        graph: dict[str, list[str]] = {}
        for task in tasks:
            where = f"template {tname!r} task {task.get('name')!r}"
            deps = list(task.get("dependencies") or []) + _depends_names(task.get("depends") or "")
            graph[task.get("name")] = deps
            for d in deps:
                if d not in tnames:
                    problems.append(f"[dependency] {where}: depends on {d!r}, which is not a task of this DAG")
            target = task.get("template")
            if task.get("templateRef") or task.get("inline"):
                continue
            if target not in by_name:
                problems.append(f"[task-template] {where}: template {target!r} does not exist")
                continue
            want = {p.get("name"): p for p in (by_name[target].get("inputs") or {}).get("parameters") or []}
            given = {p.get("name") for p in (task.get("arguments") or {}).get("parameters") or []}
            for n in sorted(set(want) - given):
                if "value" not in want[n] and "default" not in want[n]:
                    problems.append(f"[task-args] {where}: input parameter {n!r} of {target!r} is not passed")
            for n in sorted(given - set(want)):
                problems.append(f"[task-args] {where}: passes {n!r}, which {target!r} does not declare")
            fanned = any(k in task for k in ("withItems", "withParam", "withSequence"))
            if not fanned and _ITEM.search(" ".join(_strings({k: v for k, v in task.items() if k != "withItems"}))):
                problems.append(f"[item] {where}: uses {{{{item}}}} without withItems/withParam/withSequence")
        cyc = _cycle(graph)
        if cyc:
            problems.append(f"[cycle] template {tname!r}: {' -> '.join(cyc)}")
    return problems
