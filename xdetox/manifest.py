"""Step manifests and commit records: the contract between the planner, executors and steps.

A manifest is everything a step needs: its kind, parameters, the keys of the steps whose outputs
it reads, its shard, and where it writes. A step is a pure function of its manifest. Its key is
a digest of kind, parameters, shard and its inputs' keys (which are themselves digests), so
equal work has an equal key wherever it appears in a plan, and in any later run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

#: a step kind's name as manifests, keys and Argo labels spell it
KIND_NAME = r"^[a-z][a-z0-9_]{0,40}$"

# The registry of step kinds (xdetox.kinds.steps) sits above this module in the layers, so it tells
# the manifest how to check a kind instead of being imported: a manifest of an unregistered kind is
# refused when read, like any other bad field, and a kind registered from a plugin or a test passes.
_kind_check: Callable[[str], None] | None = None


def set_kind_check(check: Callable[[str], None] | None) -> None:
    """Install the function that raises ValueError for a step kind nobody registered."""
    global _kind_check
    _kind_check = check


def _registered(name: str) -> str:
    if _kind_check is not None:
        _kind_check(name)
    return name


#: any registered step kind (xdetox.kinds.steps); step kinds are open, not a fixed list
StepKind = Annotated[str, Field(pattern=KIND_NAME), AfterValidator(_registered)]

MANIFEST_SCHEMA_VERSION = 1
#: bump when a step's outputs change meaning for the same manifest: invalidates every cached step
CODE_EPOCH = "2026-12-05.1"


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:n]


class Shard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    index: int = Field(ge=0)
    count: int = Field(gt=0)

    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"


class StepManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = MANIFEST_SCHEMA_VERSION
    kind: StepKind
    key: str
    run_id: str
    label: str = Field(description="human-readable: what this step does")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, list[str]] = Field(default_factory=dict, description="name -> upstream step keys")
    shard: Shard | None = None
    output_prefix: str = Field(description="run-relative prefix under which the step writes its outputs")

    def deps(self) -> list[str]:
        seen: dict[str, None] = {}
        for keys in self.inputs.values():
            for k in keys:
                seen.setdefault(k, None)
        return list(seen)

    @staticmethod
    def compute_key(kind: str, params: dict[str, Any], inputs: dict[str, list[str]], shard: Shard | None) -> str:
        return digest(
            {
                "epoch": CODE_EPOCH,
                "kind": kind,
                "params": params,
                "inputs": {k: list(v) for k, v in sorted(inputs.items())},
                "shard": shard.model_dump() if shard else None,
            }
        )


class OutputFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(description="run-relative key")
    sha256: str
    size: int


class CommitRecord(BaseModel):
    """``steps/<key>/_SUCCESS.json``: written last; an output exists only once this does."""

    model_config = ConfigDict(extra="forbid")
    key: str
    kind: str = Field(pattern=KIND_NAME)  # history: a record stays readable after its kind is gone
    label: str
    outputs: list[OutputFile]
    info: dict[str, Any] = Field(default_factory=dict, description="step-specific results: counts, metrics")
    versions: dict[str, str] = Field(default_factory=dict)
    started_at: str
    finished_at: str
    seconds: float
    host: str = ""


def step_prefix(key: str) -> str:
    return f"steps/{key}"


def partial_prefix(key: str) -> str:
    """``steps/<key>/partial``: the resumable partial state of a step that has not committed
    (chunks, checkpoints, progress.json; see xdetox.store.partial). Removed once it commits."""
    return f"steps/{key}/partial"


def manifest_key(key: str) -> str:
    return f"steps/{key}/manifest.json"


def commit_key(key: str) -> str:
    return f"steps/{key}/_SUCCESS.json"


def running_key(key: str) -> str:
    """``steps/<key>/_RUNNING.json``: who started the step and when; removed when the attempt ends
    (left behind by a killed one, which ``xdetox status`` tells apart by the run lease)."""
    return f"steps/{key}/_RUNNING.json"


def failure_key(key: str) -> str:
    """``steps/<key>/_FAILED.json``: the last failed attempt's error, for ``xdetox status``; the
    commit record supersedes it (it is removed when the step commits)."""
    return f"steps/{key}/_FAILED.json"
