"""The plan: a DAG of step manifests in dependency order, plus what a report needs to read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xdetox.manifest import StepManifest


class SettingInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int
    label: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    evaluate_key: str
    train_keys: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run_id: str
    spec_digest: str
    settings: list[SettingInfo]
    steps: list[StepManifest]
    report_key: str

    def by_key(self) -> dict[str, StepManifest]:
        return {s.key: s for s in self.steps}

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    def dependents(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s.key: [] for s in self.steps}
        for s in self.steps:
            for d in s.deps():
                out[d].append(s.key)
        return out
