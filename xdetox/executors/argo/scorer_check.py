"""``xdetox scorer check`` as an Argo Workflow: one pod on the scorer kind's image and role.

A scorer-check job (``jobs/checks/<name>.yaml``) names the scorer (the same ``scoring:`` section an
experiment spec has: swapping the lexicon for a hub XLM-R classifier is one line), the reference
(``jsonl:s3://…`` or ``rtplx:s3://…``: a pod reads only the bucket) and where the results go
(``results: s3://…``: ``check.json``, ``rows.jsonl`` and, with ``fit_calibration``, the
``calibration-map.json`` that a spec's ``calibration:`` can then name). The pod runs
``xdetox scorer check --scoring-b64 … --reference … --results …``; its log shows progress
lines with rate and ETA. The pod asks for a GPU when the scorer kind declares GPU pods
(classifier), takes the kind's API semaphore and secrets (Perspective), and retries what the step
pods retry (a bad input, exit 2, is never retried).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from hera.workflows import DAG, Parameter, Task, Workflow, WorkflowTemplate
from hera.workflows import models as m
from pydantic import Field, ValidationError, field_validator, model_validator

from xdetox.executors.argo.config import ClusterConfig
from xdetox.executors.argo.render import LABEL_RUN, _container, _pod_security_context
from xdetox.fields import Name, StrictModel
from xdetox.kinds import scorers as scorer_kinds
from xdetox.spec.errors import SpecError, problems_from_validation
from xdetox.spec.models import ResourcesSpec, ScorerSpec, StepResources

MAP_FILE = "/tmp/calibration-map.json"  # the pod's scratch (TMPDIR); uploaded under results


class ScorerCheckJob(StrictModel):
    """What ``xdetox argo submit-check`` runs: one scorer against one reference set, on a cluster."""

    name: Name = Field(description="names the workflow (and its WorkflowTemplate)")
    description: str = ""
    scoring: ScorerSpec = Field(description="the scorer, exactly as an experiment spec's scoring section")
    reference: str = Field(description="jsonl:s3://bucket/key (text, language, reference) or rtplx:s3://bucket/prefix")
    results: str = Field(description="s3:// prefix for check.json, rows.jsonl and calibration-map.json")
    languages: list[str] | None = Field(default=None, description="language codes (default: all)")
    threshold: float | None = Field(default=None, description="toxic = reference >= this (default 3 rtplx, 0.5 jsonl)")
    resamples: int = Field(default=1000, gt=0, description="bootstrap resamples for the 95% intervals")
    fit_calibration: bool = Field(default=False, description="also fit a per-language isotonic map")
    resources: StepResources = Field(default_factory=lambda: ResourcesSpec().score,
                                     description="the pod's size (gpu 0 for a CPU scorer kind regardless)")

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        kind, _, where = v.partition(":")
        if v.startswith("s3://") and v.endswith(".jsonl"):  # as `scorer check` reads it: no prefix needed
            return v
        if kind not in {"jsonl", "rtplx"} or not where.startswith("s3://"):
            raise ValueError("a pod reads only the bucket: jsonl:s3://bucket/key or rtplx:s3://bucket/prefix")
        return v

    @field_validator("results")
    @classmethod
    def _results(cls, v: str) -> str:
        if not v.startswith("s3://") or "/" not in v[len("s3://"):].strip("/"):
            raise ValueError("an s3://bucket/prefix the pod writes check.json and rows.jsonl under")
        return v

    @field_validator("scoring")
    @classmethod
    def _calibration_in_bucket(cls, v: Any) -> Any:
        uri = getattr(v, "calibration", None)
        if uri and not uri.startswith("s3://"):
            raise ValueError(f"calibration {uri!r}: a pod reads only the bucket, give an s3:// URI")
        return v


    @model_validator(mode="after")
    def _no_fit_on_rtplx(self) -> ScorerCheckJob:
        if self.fit_calibration and self.reference.startswith("rtplx:"):
            raise ValueError("fit_calibration: RTP-LX is for evaluation only (never tune a scorer on it); fit "
                             "against another reference, e.g. jsonl:s3://… cached Perspective scores")
        return self


def load_job(path: Path) -> ScorerCheckJob:
    """The job file, validated; SpecError names the field and line (the CLI prints it, exit 2)."""
    from xdetox.spec.load import _line_index, parse_yaml

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        from xdetox.spec.errors import SpecProblem

        raise SpecError([SpecProblem("", "no such file")], source) from None
    data = parse_yaml(text, source)
    try:
        return ScorerCheckJob.model_validate(data)
    except ValidationError as e:
        raise SpecError(problems_from_validation(e, _line_index(text)), source) from None


def _b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).decode("ascii")


def _args(job: ScorerCheckJob) -> list[str]:
    args = ["--scoring-b64", "{{workflow.parameters.scoring}}", "--reference", "{{workflow.parameters.reference}}",
            "--results", "{{workflow.parameters.results}}", "--resamples", str(job.resamples)]
    if job.languages:
        args += ["--languages", ",".join(job.languages)]
    if job.threshold is not None:
        args += ["--threshold", f"{job.threshold:g}"]
    if job.fit_calibration:
        args += ["--fit-calibration", MAP_FILE]
    return args


def build_check(job: ScorerCheckJob, cfg: ClusterConfig, template: bool = False) -> Workflow:
    decl = scorer_kinds.get(str(job.scoring.kind))
    res = job.resources
    if decl.resources != "score-gpu":
        res = res.model_copy(update={"gpu": 0})  # lexicon, Perspective: no GPU idles
    pod = _container("scorer-check", "score", decl.image, res, cfg, [job.scoring], ["xdetox", "scorer", "check"],
                     _args(job), semaphore=decl.semaphore)
    labels = {"app.kubernetes.io/name": "xdetox", "app.kubernetes.io/part-of": "xdetox", LABEL_RUN: job.name}
    common: dict[str, Any] = dict(
        namespace=cfg.namespace,
        labels=labels,
        annotations={"xdetox.io/scorer-check": job.scoring.kind},
        entrypoint="main",
        arguments=[Parameter(name="scoring", value=_b64(job.scoring.model_dump(mode="json"))),
                   Parameter(name="reference", value=job.reference),
                   Parameter(name="results", value=job.results)],
        # a one-task DAG, like every other xdetox workflow (tools read templates[0] as the DAG)
        templates=[DAG(name="main", tasks=[Task(name="scorer-check", template="scorer-check")]), pod],
        service_account_name=cfg.service_account,
        security_context=_pod_security_context(cfg),
        pod_gc=m.PodGC(strategy=cfg.pod_gc),
        ttl_strategy=m.TTLStrategy(seconds_after_success=cfg.ttl_after_success_s,
                                   seconds_after_failure=cfg.ttl_after_failure_s),
        pod_metadata=m.Metadata(labels={"app.kubernetes.io/part-of": "xdetox", LABEL_RUN: job.name}),
        active_deadline_seconds=cfg.active_deadline_s,
        archive_logs=cfg.archive_logs or None,
        image_pull_secrets=[m.LocalObjectReference(name=n) for n in cfg.images.pull_secrets] or None,
    )
    if template:
        return WorkflowTemplate(name=f"xdetox-check-{job.name}", **common)
    return Workflow(generate_name=f"check-{job.name}-", **common)


def render_check(job: ScorerCheckJob, cfg: ClusterConfig | None = None) -> dict[str, Any]:
    return build_check(job, cfg or ClusterConfig()).to_dict()


def render_check_template(job: ScorerCheckJob, cfg: ClusterConfig | None = None) -> dict[str, Any]:
    return build_check(job, cfg or ClusterConfig(), template=True).to_dict()
