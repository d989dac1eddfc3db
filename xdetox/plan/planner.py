"""The planner: a pure function from an experiment spec to a DAG of step manifests.

No I/O happens here. Matrix settings expand first; each setting contributes its steps, and a step
whose key (kind + params + shard + input keys) is already planned is shared, not repeated: the
base model, its "before" generations and their scores are planned once for a whole grid of
training settings.

Per setting and model:
  build_model (builtin models only) -> train (unless method none)
  for each arm (base, tuned) and prompt set: generate shard i/N -> score shard i/N
  align (when alignment is requested) per arm
  evaluate: all score shards and alignments of the setting
and one report over every setting's evaluation.
"""

from __future__ import annotations

from typing import Any

from xdetox.manifest import Shard, StepManifest, digest
from xdetox.plan.analysis_params import analyze_params, wants_analysis
from xdetox.plan.model import Plan, SettingInfo
from xdetox.spec.matrix import expand_matrix
from xdetox.spec.models import ExperimentSpec, ModelSpec


class _Builder:
    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.steps: dict[str, StepManifest] = {}

    def add(
        self,
        kind: str,
        label: str,
        params: dict[str, Any],
        inputs: dict[str, list[str]] | None = None,
        shard: Shard | None = None,
        output_prefix: str | None = None,
        group: str | None = None,
    ) -> str:
        inputs = inputs or {}
        key = StepManifest.compute_key(kind, params, inputs, shard)
        if key in self.steps:
            return key
        if output_prefix is None:
            base = {"build_model": "models", "train": "models", "align": "alignment", "analyze": "analysis",
                    "evaluate": "evaluations"}.get(kind, kind)
            output_prefix = f"{base}/{group or key}"
        self.steps[key] = StepManifest(
            kind=kind,  # type: ignore[arg-type]
            key=key,
            run_id=self.run_id,
            label=label,
            params=params,
            inputs=inputs,
            shard=shard,
            output_prefix=output_prefix,
        )
        return key


def _model_params(m: ModelSpec, arm: str) -> dict[str, Any]:
    return {"id": m.id, "source": m.source, "revision": m.revision, "dtype": m.dtype,
            "architecture": m.architecture, "arm": arm}


def _base_model(b: _Builder, spec: ExperimentSpec, m: ModelSpec) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Params and inputs that name the untuned model for downstream steps."""
    params = _model_params(m, "base")
    if m.source.startswith("builtin:"):
        key = b.add("build_model", f"build {m.source} ({m.id})", {"source": m.source, "seed": spec.seed})
        return params, {"model": [key]}
    return params, {}


def _setting_label(overrides: dict[str, Any]) -> str:
    """A variant's own label when it has one, then the matrix values that vary."""
    label = overrides.get("label")
    rest = [f"{k}={_short(v)}" for k, v in overrides.items() if k != "label"]
    if label is not None:
        matrix_part = [r for r in rest if not r.split("=")[0].startswith("variant")]
        return " ".join([str(label), *(f"[{r}]" for r in matrix_part)]) if matrix_part else str(label)
    return ", ".join(rest) or "default"


def _short(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "+".join(str(v) for v in value)
    if isinstance(value, list | dict):
        text = str(value)
        return text if len(text) <= 40 else f"<{type(value).__name__} #{digest(value, 6)}>"
    return str(value)


def plan(spec: ExperimentSpec) -> Plan:
    b = _Builder(spec.name)
    settings: list[SettingInfo] = []
    analyze_keys: list[str] = []
    for index, (overrides, s) in enumerate(expand_matrix(spec)):
        setting_label = _setting_label(overrides)
        eval_inputs: dict[str, list[str]] = {}
        arms_meta: list[dict[str, Any]] = []
        train_keys: list[str] = []
        gen = s.generation.model_dump(mode="json")
        gen["seed"] = s.generation.seed if s.generation.seed is not None else s.seed
        for m in s.models:
            base_params, base_inputs = _base_model(b, s, m)
            arms: list[tuple[str, dict[str, Any], dict[str, list[str]]]] = []
            tkey = None
            if s.compare_base or s.training.method == "none":
                arms.append(("base", base_params, base_inputs))
            if s.training.method != "none":
                training = s.training.model_dump(mode="json")
                training["seed"] = s.training.seed if s.training.seed is not None else s.seed
                langs = "+".join(s.training.data.languages) if s.training.data else ""
                tkey = b.add(
                    "train",
                    f"train {m.id} {s.training.method} on {langs}",
                    {"model": base_params, "training": training},
                    {"base_model": base_inputs["model"]} if base_inputs else {},
                )
                train_keys.append(tkey)
                tuned_label = f"{s.training.method}-{langs}"
                arms.append((f"tuned:{tuned_label}", {**_model_params(m, "tuned"), "tuned": tuned_label}, {"model": [tkey]}))
            analysis = s.analysis.model_dump(mode="json") if s.analysis is not None else None
            if wants_analysis(analysis, m.id, m.architecture):
                tuned_params = arms[-1][1] if tkey else None
                aparams = analyze_params(analysis or {}, base_params, tuned_params,
                                         [p.model_dump(mode="json") for p in s.prompts])
                ainputs = dict(base_inputs)
                if tkey:
                    ainputs["tuned"] = [tkey]
                anakey = b.add("analyze", f"analyze {m.id}", aparams, ainputs)
                analyze_keys.append(anakey)
            for arm_name, model_params, model_inputs in arms:
                arm = "base" if arm_name == "base" else "tuned"
                for ps in s.prompts:
                    gparams = {"model": model_params, "prompts": ps.model_dump(mode="json"), "generation": gen}
                    ggroup = digest({"kind": "generate", "params": gparams, "inputs": model_inputs})
                    ppl = s.metrics.perplexity
                    sparams = {"scorer": s.scoring.model_dump(mode="json"),
                               "perplexity": ppl.model_dump(mode="json") if ppl else None}
                    # reference "self": perplexity under the model that generated the rows
                    self_ppl = ppl is not None and ppl.reference == "self"
                    if self_ppl:
                        sparams["model"] = model_params
                    sgroup = digest({"kind": "score", "params": sparams, "generations": ggroup})
                    score_keys = []
                    n = s.sharding.generate
                    for i in range(n):
                        shard = Shard(index=i, count=n)
                        gk = b.add("generate", f"generate {m.id}/{arm} {ps.id} {i + 1}/{n}", gparams, model_inputs,
                                   shard, output_prefix=f"generations/{ggroup}")
                        sinputs = {"generations": [gk]}
                        if self_ppl and model_inputs:
                            sinputs["model"] = model_inputs["model"]
                        sk = b.add("score", f"score {m.id}/{arm} {ps.id} {i + 1}/{n}", sparams, sinputs,
                                   shard, output_prefix=f"scores/{sgroup}")
                        score_keys.append(sk)
                    name = f"scores:{m.id}:{arm}:{ps.id}"
                    eval_inputs[name] = score_keys
                    arms_meta.append({"input": name, "model_id": m.id, "arm": arm, "prompt_set": ps.id,
                                      "languages": ps.languages})
                if s.metrics.alignment is not None:
                    al = s.metrics.alignment
                    langs = al.languages or sorted({x for p in s.prompts for x in p.languages})
                    ak = b.add("align", f"align {m.id}/{arm}",
                               {"model": model_params, "alignment": al.model_dump(mode="json"), "languages": langs},
                               model_inputs)
                    eval_inputs[f"align:{m.id}:{arm}"] = [ak]
        ekey = b.add(
            "evaluate",
            f"evaluate {setting_label}",
            {"metrics": s.metrics.model_dump(mode="json"), "arms": arms_meta,
             "scorer_kind": s.scoring.kind, "training_method": s.training.method},
            eval_inputs,
        )
        settings.append(SettingInfo(index=index, label=setting_label, overrides=overrides, evaluate_key=ekey,
                                    train_keys=train_keys))
    report_params = {
        "run_id": spec.name,
        "description": spec.description,
        "settings": [st.model_dump(mode="json", exclude={"evaluate_key", "train_keys"}) for st in settings],
        "scorer": spec.scoring.model_dump(mode="json"),
        "matrix": {k: v for k, v in spec.matrix.items()},
    }
    report_inputs = {"evaluations": [st.evaluate_key for st in settings]}
    if analyze_keys:  # the report lists each analysis; without one the report's key is unchanged
        report_inputs["analyses"] = list(dict.fromkeys(analyze_keys))
    rkey = b.add("report", "report", report_params, report_inputs, output_prefix="results")
    return Plan(
        run_id=spec.name,
        spec_digest=digest(spec.model_dump(mode="json")),
        settings=settings,
        steps=_topological(list(b.steps.values())),
        report_key=rkey,
    )


def _topological(steps: list[StepManifest]) -> list[StepManifest]:
    """Dependency order, stable: among ready steps, the order they were planned in."""
    by_key = {s.key: s for s in steps}
    order = {s.key: i for i, s in enumerate(steps)}
    done: set[str] = set()
    out: list[StepManifest] = []
    pending = list(steps)
    while pending:
        ready = [s for s in pending if all(d in done for d in s.deps())]
        if not ready:
            missing = {d for s in pending for d in s.deps() if d not in by_key}
            raise ValueError(f"plan has a cycle or missing steps: {sorted(missing) or 'cycle'}")
        ready.sort(key=lambda s: order[s.key])
        for s in ready:
            out.append(s)
            done.add(s.key)
        pending = [s for s in pending if s.key not in done]
    return out
