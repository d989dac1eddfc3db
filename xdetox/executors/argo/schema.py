"""Validate Argo manifests against Argo's own JSON schema, made strict at load time.

The vendored schema (``xdetox/data/schemas``) is kept byte-identical to upstream; two patches are
applied in memory: int-or-string and quantity fields also accept integers (as Argo and Kubernetes
do), and every object that declares properties rejects keys it does not declare, so a misspelt
field is an error instead of being silently dropped by the controller.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_FILE = "argo-workflows-v4.1.2.schema.json"
ARGO_VERSION = "v4.1.2"
_INT_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.api.resource.Quantity")
KINDS = ("Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate", "WorkflowEventBinding")


def load_raw() -> dict[str, Any]:
    text = (resources.files("xdetox") / "data" / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _strict(node: Any) -> None:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node \
                and not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
        for v in node.values():
            _strict(v)
    elif isinstance(node, list):
        for v in node:
            _strict(v)


def patch(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    defs = out["definitions"]
    for name in _INT_OR_STRING:
        desc = defs[name].get("description", "")
        defs[name] = {"description": desc, "anyOf": [{"type": "string"}, {"type": "integer"}]}
    _strict(defs)
    return out


@cache
def _validator(kind: str) -> Draft202012Validator:
    if kind not in KINDS:
        raise ValueError(f"unknown Argo kind {kind!r}; expected one of {', '.join(KINDS)}")
    schema = patch(load_raw())
    schema.pop("oneOf", None)
    schema["$ref"] = f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}"
    return Draft202012Validator(schema)


def errors(manifest: dict[str, Any]) -> list[str]:
    """Every schema violation as 'path: message'; empty when the manifest is valid."""
    kind = manifest.get("kind")
    if not isinstance(kind, str):
        return ["kind: missing or not a string"]
    v = _validator(kind)
    out = []
    for e in sorted(v.iter_errors(manifest), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in e.absolute_path) or "(root)"
        out.append(f"{path}: {e.message}")
    return out
