"""The experiment spec: what a user writes, as Pydantic v2 models.

Every model forbids unknown fields so a typo is an error naming its path, not a silent default.
Sections mirror DESIGN.md: models, training, prompts, generation, scoring, metrics, sharding,
resources, matrix. The planner (xdetox.plan) is the only consumer that turns this into steps.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core import core_schema as cs

import xdetox.kinds.scorers as scorer_kinds
from xdetox.fields import BUILTIN_MODELS, KNOWN_LANGUAGES, Language, Name, StrictModel, omit_none
from xdetox.fields import check_language as _check_language

__all__ = ["KNOWN_LANGUAGES", "Language", "Name", "StrictModel"]


# --------------------------------------------------------------------------- models
class ModelSpec(StrictModel):
    """A model under test: builtin:tiny, a hub id, a local path or an s3:// URI."""

    id: Name = Field(description="short name used in step keys, reports and plots")
    source: str = Field(description="builtin:tiny | hub id (org/name) | /local/path | s3://bucket/prefix")
    revision: str | None = Field(default=None, description="hub revision or commit, for reproducibility")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    architecture: Literal["auto", "gpt2", "llama", "bloom", "other"] = Field(
        default="auto", description="used by the neuron analysis; auto detects from the config"
    )
    generation: ModelGeneration | None = Field(
        default=None, description="this model's generation settings over the spec's `generation` (paper 2's scripts "
        "decode each model their own way), applied by its generate steps and recorded in its rows' settings")

    @model_serializer(mode="wrap")
    def _omit_no_generation(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a model without overrides dumps as before the field existed: spec digests and keys stay put
        return omit_none(handler(self), ("generation",))

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if v.startswith("builtin:"):
            if v not in BUILTIN_MODELS:
                raise ValueError(f"unknown builtin model {v!r}; available: {', '.join(BUILTIN_MODELS)}")
        elif v.startswith("s3://"):
            if len(v) <= len("s3://") or "/" not in v[5:].strip("/") and not v[5:].strip("/"):
                raise ValueError("s3 URI needs a bucket: s3://bucket/prefix")
        elif "://" in v and not v.startswith("file://"):
            raise ValueError("must be builtin:tiny, a hub id, a local path, file:// or s3:// URI")
        elif not v.strip():
            raise ValueError("must not be empty")
        return v


# --------------------------------------------------------------------------- training
class TrainingData(StrictModel):
    format: Literal["pairs-jsonl", "lee-toxicity-pairs", "paradetox", "sft-jsonl"] = Field(
        description="pairs-jsonl: prompt/chosen/rejected; lee-toxicity-pairs: prompt_text/unpert_gen_text/"
        "pert_gen_text; paradetox: toxic/neutral sentence pairs; sft-jsonl: prompt/completion"
    )
    path: str = Field(
        description="bundled:paradetox, a local path or an s3:// URI (file or folder of <lang>.jsonl)"
    )
    languages: list[Language] = Field(default_factory=lambda: ["en"], min_length=1)
    split: Literal["train", "test", "all"] = "train"
    split_scheme: Literal["hf_shuffle42", "np_perm42"] = Field(
        default="hf_shuffle42", description="paper 2's two train/test splits of multilingual ParaDetox"
    )
    fraction: float = Field(default=1.0, gt=0, le=1, description="share of each language's rows to use")
    max_rows: int | None = Field(default=None, gt=0)

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        return [_check_language(x) for x in v]


class PeftSpec(StrictModel):
    mode: Literal["full", "lora", "qlora"] = "full"
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    merge: bool = Field(default=True, description="merge the adapter into the weights after training")


class HyperParams(StrictModel):
    learning_rate: float | None = Field(default=None, gt=0)
    beta: float | None = Field(default=None, gt=0, description="DPO beta")
    loss_type: list[str] | None = Field(default=None, description="TRL DPO loss types, e.g. [sigmoid]")
    optimizer: str | None = Field(default=None, description="transformers optim name, e.g. rmsprop")
    lr_scheduler_type: str | None = Field(default=None, description="transformers scheduler, e.g. constant_with_warmup")
    warmup_ratio: float | None = Field(default=None, ge=0, lt=1)
    weight_decay: float | None = Field(default=None, ge=0)
    max_grad_norm: float | None = Field(default=None, gt=0)
    max_prompt_length: int | None = Field(default=None, gt=0, description="paper 1's DPO prompt limit (tokens)")
    max_pair_chars: int | None = Field(default=None, gt=0,
                                       description="drop DPO pairs whose prompt + chosen/rejected exceed this many characters")
    eval_steps: int | None = Field(default=None, gt=0, description="defaults to save_steps")
    epochs: float | None = Field(default=None, gt=0)
    max_steps: int | None = Field(default=None, gt=0)
    batch_size: int | None = Field(default=None, gt=0)
    gradient_accumulation_steps: int | None = Field(default=None, gt=0)
    warmup_steps: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, gt=0)
    early_stopping_patience: int | None = Field(default=None, gt=0)
    validation_fraction: float | None = Field(default=None, ge=0, lt=1)
    save_steps: int | None = Field(default=None, gt=0)


class TrainingSpec(StrictModel):
    method: Literal["dpo", "sft", "none"] = "dpo"
    preset: Literal["pref-tuning-2406.16235", "breaking-mbad-2505.16722", "breaking-mbad-2505.16722-pft",
                    "breaking-mbad-2505.16722-mft"] | None = Field(
        default=None, description="a paper's recipe (xdetox/spec/recipes.py, docs/FIDELITY.md): paper 1's DPO; "
        "paper 2's cross-lingual X-FT scripts, its pooled P-FT (-pft) or its multilingual M-FT (-mft) scripts")
    data: TrainingData | None = None
    peft: PeftSpec = PeftSpec()
    hyper: HyperParams = HyperParams()
    seed: int | None = Field(default=None, description="defaults to the experiment seed")

    @model_validator(mode="after")
    def _need_data(self) -> TrainingSpec:
        if self.method != "none" and self.data is None:
            raise ValueError("training.data is required when training.method is dpo or sft")
        return self


# --------------------------------------------------------------------------- prompts
class PromptSet(StrictModel):
    id: Name
    source: str = Field(
        description="bundled:xling-prompts-200 | rtp-lx:<path or URI> | jsonl:<path or URI> | "
        "paradetox:<bundled or path>"
    )
    languages: list[Language] = Field(min_length=1)
    limit_per_language: int | None = Field(default=None, gt=0)
    template: str = Field(default="{prompt}", description="how a prompt is shown to the model")
    paradetox_split: Literal["train", "test", "all"] = "test"
    paradetox_side: Literal["toxic", "neutral"] = "toxic"
    paradetox_split_scheme: Literal["hf_shuffle42", "np_perm42"] = Field(
        default="hf_shuffle42", description="which of paper 2's train/test splits paradetox_split refers to"
    )

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("languages must not repeat")
        return [_check_language(x) for x in v]

    @field_validator("template")
    @classmethod
    def _template(cls, v: str) -> str:
        if "{prompt}" not in v:
            raise ValueError("template must contain {prompt}")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        kinds = ("bundled:", "rtp-lx:", "jsonl:", "paradetox:")
        if not v.startswith(kinds):
            raise ValueError(f"must start with one of {', '.join(kinds)}")
        return v


# --------------------------------------------------------------------------- generation
#: decoding settings beyond temperature / top-p / new tokens, under transformers' generate() names;
#: unset (None) they are left out of dumps, so specs that do not use them keep their digests and keys
DECODING_EXTRAS = ("top_k", "min_new_tokens", "num_beams", "no_repeat_ngram_size", "repetition_penalty", "do_sample")


class GenerationSpec(StrictModel):
    samples: int = Field(default=25, gt=0, le=1000, description="continuations per prompt")
    temperature: float = Field(default=0.9, gt=0, le=10)
    top_p: float = Field(default=0.8, gt=0, le=1)
    max_new_tokens: int = Field(default=20, gt=0, le=4096)
    top_k: int | None = Field(default=None, gt=0, description="keep the k most probable tokens before top-p "
                              "(unset: no top-k; transformers' generate() applies 50 when a script leaves it unset)")
    min_new_tokens: int | None = Field(default=None, gt=0, description="no end-of-sequence before this many tokens")
    num_beams: int | None = Field(default=None, gt=0, le=64, description="beam search width; with sampling, "
                                  "transformers' beam-sample (paper 2's mT5 X-FT script); unset: 1")
    no_repeat_ngram_size: int | None = Field(default=None, gt=0, description="never repeat an n-gram of this size")
    repetition_penalty: float | None = Field(default=None, gt=0, le=10, description="transformers' (CTRL) "
                                             "penalty on tokens already in the sequence; unset: none (1.0)")
    do_sample: bool | None = Field(default=None, description="false: greedy (or plain beam search); unset: sample")
    seed: int | None = Field(default=None, description="defaults to the experiment seed")
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    batch_size: int = Field(default=16, gt=0, description="prompts per forward batch")
    chunk_prompts: int = Field(default=64, gt=0, description="prompts per committed chunk (resume unit)")
    chat_template: bool = False

    @model_validator(mode="after")
    def _lengths(self) -> GenerationSpec:
        if self.min_new_tokens is not None and self.min_new_tokens > self.max_new_tokens:
            raise ValueError(f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens ({self.max_new_tokens})")
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_extras(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_none(handler(self), DECODING_EXTRAS)

    @property
    def beams(self) -> int:
        return self.num_beams or 1

    @property
    def sampled(self) -> bool:
        return self.do_sample is not False


class ModelGeneration(StrictModel):
    """One model's generation settings over the spec's (unset fields: the spec's), e.g. paper 2's mT5 X-FT
    script's beam-sample decoding or BLOOM's 100 new tokens."""

    temperature: float | None = Field(default=None, gt=0, le=10)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, gt=0)
    max_new_tokens: int | None = Field(default=None, gt=0, le=4096)
    min_new_tokens: int | None = Field(default=None, gt=0)
    num_beams: int | None = Field(default=None, gt=0, le=64)
    no_repeat_ngram_size: int | None = Field(default=None, gt=0)
    repetition_penalty: float | None = Field(default=None, gt=0, le=10)
    do_sample: bool | None = None
    template: str | None = Field(default=None, description="how a prompt is shown to this model, instead of each "
                                 "prompt set's template (paper 2's mT5 P-FT and M-FT scripts: 'detoxify: {prompt}')")

    @field_validator("template")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None and "{prompt}" not in v:
            raise ValueError("template must contain {prompt}")
        return v

    @model_serializer(mode="wrap")
    def _only_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def apply(self, gen: GenerationSpec) -> GenerationSpec:
        """The spec's generation settings with this model's set over them (validated again as a whole)."""
        set_here = self.model_dump(exclude_none=True, exclude={"template"})
        return GenerationSpec.model_validate({**gen.model_dump(), **set_here})


# --------------------------------------------------------------------------- scoring
class _ScorerSpecField:
    """``scoring:``: dispatched on ``kind`` through the scorer-kind registry (xdetox.kinds.scorers), so a
    kind registered later (a plugin, a test) validates too; errors keep their field paths and the
    JSON schema is a oneOf of the kinds registered when it is generated."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> cs.CoreSchema:
        return cs.no_info_plain_validator_function(
            scorer_kinds.validate_spec,
            serialization=cs.plain_serializer_function_ser_schema(
                lambda v, info: v.model_dump(mode=info.mode), info_arg=True, when_used="always"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        subs = [handler(k.spec_model.__pydantic_core_schema__) for k in scorer_kinds.all_kinds()]
        mapping = {k.name: sub["$ref"] for k, sub in zip(scorer_kinds.all_kinds(), subs, strict=True) if "$ref" in sub}
        out: JsonSchemaValue = {"oneOf": subs}
        out["discriminator"] = {"propertyName": "kind", **({"mapping": mapping} if mapping else {})}
        return out


#: a scorer spec of any registered kind (each kind's Pydantic model, ``kind`` its tag)
ScorerSpec = Annotated[Any, _ScorerSpecField]


# --------------------------------------------------------------------------- metrics
class PerplexitySpec(StrictModel):
    reference: str = Field(
        description="model source of the reference LM (causal or seq2seq), or 'self': the model that "
        "generated the rows (paper 2's knowledge preservation: each model's own perplexity)"
    )
    text: Literal["continuation", "completion", "prompt"] = Field(
        default="continuation",
        description="continuation: perplexity of the continuation given its prompt (paper 1's fluency); "
        "completion: perplexity of the generated text alone (paper 2's knowledge preservation, their "
        "6_perplexity_scores_*.py on model_completion); prompt: perplexity of the prompt text itself",
    )
    batch_size: int = Field(default=16, gt=0)


class AlignmentSpec(StrictModel):
    parallel_set: str = "bundled:xling-prompts-200"
    pivot: Language = "en"
    languages: list[Language] | None = Field(default=None, description="defaults to the prompt languages")
    limit: int = Field(default=200, gt=1)


class MetricsSpec(StrictModel):
    toxicity: bool = True
    diversity: bool = True
    perplexity: PerplexitySpec | None = None
    alignment: AlignmentSpec | None = None
    bootstrap_samples: int = Field(default=1000, ge=0)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    threshold: float = Field(default=0.5, gt=0, lt=1, description="toxicity probability threshold")
    headline: scorer_kinds.HeadlineMetric | None = Field(
        default=None,
        description="the toxicity metric the summary and report lead with (and the alignment correlation and "
        "heatmaps use); one of the `scoring` scorer's score kind's metrics. Default: expected_maximum_toxicity for "
        "probability scorers (paper 1's Table 2 leads with it), lexicon_hit_rate for lexicon hits")

    @model_serializer(mode="wrap")
    def _omit_default_headline(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a spec that names no headline dumps as before the field existed: its step keys and digest
        # (the nightly reference's) stay put
        return omit_none(handler(self), ("headline",))


# --------------------------------------------------------------------------- neuron analysis
class ProbeSpec(StrictModel):
    source: str = Field(default="bundled:mgpt-probe", description="bundled:mgpt-probe (mGPT's English toxicity "
                        "probe, 2048-d) | train | path or s3:// URI of a probe JSON {\"weight\": [...]}")
    data: str = Field(default="paradetox:bundled", description="for source train: ParaDetox toxic (1) vs neutral (0)")
    languages: list[Language] = Field(default_factory=lambda: ["en"], min_length=1)
    split: Literal["train", "test", "all"] = "train"
    limit_per_language: int | None = Field(default=None, gt=0)
    l2: float = Field(default=1e-3, ge=0)

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str]) -> list[str]:
        return [_check_language(x) for x in v]


class InterventionSpec(StrictModel):
    # Paper 1 (BatsResearch/cross-lingual-detox notebooks/Causal Intervention.ipynb) edits by +5 to
    # show what the neurons promote; its section 6 result (paper-reference toxic_neurons_mgpt:
    # 0.175 -> 0.032 average toxicity) is for a negative offset, taken here as -5 (the code gives no value).
    offsets: list[float] = Field(default_factory=lambda: [-5.0, 5.0], min_length=1,
                                 description="each added in turn to every toxic neuron's activation at every position")
    scale: float = Field(default=1.0, description="multiplies the activation first (0 ablates)")


class NeuronAnalysisSpec(StrictModel):
    """Paper 1's toxic-neuron analysis (the analyze step), for GPT-2-architecture models by default."""

    probe: ProbeSpec = ProbeSpec()
    top_k: int = Field(default=100, gt=0, description="candidate value vectors most cosine-similar to the probe "
                       "(paper 1: 100, xg/interp.py get_top_toxic_value_vectors(topk=100))")
    positive_activation: bool = Field(
        default=True, description="keep only candidates whose mean activation over greedy continuations of the "
        "selection_language prompts is positive (paper 1's README: 36 of mGPT's 100 remain)")
    selection_language: Language = Field(default="en", description="prompts that select the neurons (paper 1: English)")
    neurons: Literal["bundled:mgpt-toxic-neurons"] | list[tuple[int, int]] | None = Field(
        default=None, description="a fixed neuron list instead of the top_k search")
    prompt_set: str | None = Field(default=None, description="id of the prompt set to decode; default the first")
    limit_per_language: int | None = Field(default=100, gt=0)
    max_new_tokens: int = Field(default=20, gt=0)
    batch_size: int = Field(default=8, gt=0)
    intervention: InterventionSpec | None = InterventionSpec()
    compare_reference: bool = Field(default=False, description="rank-correlate with mGPT's published activations")
    models: list[str] | None = Field(default=None, description="model ids; default: models with architecture gpt2")


# --------------------------------------------------------------------------- sharding and resources
class ShardingSpec(StrictModel):
    generate: int = Field(default=1, gt=0, le=4096, description="generate shards per model and prompt set")


class StepResources(StrictModel):
    gpu: int = Field(default=0, ge=0)
    cpu: str = "1"
    memory: str = "4Gi"
    image: str | None = None


class ResourcesSpec(StrictModel):
    """Per step kind: what its pod requests on a cluster (the local executor ignores it)."""

    build_model: StepResources = StepResources(cpu="2", memory="4Gi")
    train: StepResources = StepResources(gpu=1, cpu="8", memory="64Gi")
    generate: StepResources = StepResources(gpu=1, cpu="8", memory="64Gi")
    score: StepResources = StepResources(gpu=1, cpu="4", memory="32Gi")
    perplexity: StepResources = StepResources(gpu=1, cpu="4", memory="32Gi")
    align: StepResources = StepResources(gpu=1, cpu="4", memory="32Gi")
    analyze: StepResources = StepResources(gpu=1, cpu="4", memory="32Gi")
    evaluate: StepResources = StepResources(cpu="2", memory="8Gi")
    report: StepResources = StepResources(cpu="1", memory="4Gi")


# --------------------------------------------------------------------------- experiment
#: fields one report has one of: the metric its summary, bars and heatmaps lead with
ONE_PER_REPORT = frozenset({"metrics.headline"})


class ExperimentSpec(StrictModel):
    name: Name = Field(description="run id: results go to <store>/runs/<name>/")
    description: str = ""
    store: str = Field(default="file://./runs", description="file://path or s3://bucket/prefix")
    seed: int = 1234
    models: list[ModelSpec] = Field(min_length=1)
    training: TrainingSpec = TrainingSpec(method="none")
    prompts: list[PromptSet] = Field(min_length=1)
    generation: GenerationSpec = GenerationSpec()
    scoring: ScorerSpec = Field(default=scorer_kinds.default_spec(),
                                description="the toxicity scorer; one of the registered scorer kinds (a list: "
                                "the first is this field, the rest go to compare_scorers)")
    compare_scorers: list[ScorerSpec] = Field(
        default_factory=list,
        description="more scorers every score row also keeps (other_scores); metrics are computed per scorer and "
        "the report shows each one's per-language agreement with `scoring` (Spearman, toxic/not disagreement)")
    metrics: MetricsSpec = MetricsSpec()
    analysis: NeuronAnalysisSpec | None = None
    sharding: ShardingSpec = ShardingSpec()
    resources: ResourcesSpec = ResourcesSpec()
    compare_base: bool = Field(default=True, description="also generate with each untuned model (before)")
    matrix: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="dotted spec paths to lists of values; settings are their Cartesian product",
    )
    variants: list[dict[str, Any]] = Field(
        default_factory=list,
        description="named alternatives, each a mapping of dotted spec paths to values (plus an optional "
        "'label'); settings are variants x matrix product (e.g. paper 2's paradigms)",
    )

    @model_validator(mode="before")
    @classmethod
    def _scoring_list(cls, data: Any) -> Any:
        """``scoring: [a, b, ...]`` is ``scoring: a`` plus ``compare_scorers: [b, ...]``; one form per spec."""
        if isinstance(data, dict) and isinstance(data.get("scoring"), list):
            listed = data["scoring"]
            if not listed:
                raise ValueError("scoring: an empty list names no scorer")
            if data.get("compare_scorers"):
                raise ValueError("scoring: give several scorers either as a list under scoring or under "
                                 "compare_scorers, not both")
            data = {**data, "scoring": listed[0], "compare_scorers": listed[1:]}
        return data

    @field_validator("metrics")
    @classmethod
    def _headline_of_the_scorer(cls, v: MetricsSpec, info: ValidationInfo) -> MetricsSpec:
        """``metrics.headline`` must be a metric of what the `scoring` scorer gives (its score kind):
        a lexicon's hit counts have no expected maximum toxicity. Reported at ``metrics.headline``."""
        scorer = info.data.get("scoring")
        if v.headline is None or scorer is None:  # a scorer that failed has its own error
            return v
        kind = scorer_kinds.declared_score_kind(scorer)
        names = scorer_kinds.TOXICITY_METRICS[kind]
        if v.headline not in names:
            what = "lexicon hits, not probabilities" if kind == "hits" else "probabilities"
            message = (f"{v.headline!r} is not a metric of the {scorer.kind} scorer's scores ({what}); "
                       f"choose one of {', '.join(names)}")
            raise ValidationError.from_exception_data("MetricsSpec", [InitErrorDetails(
                type=PydanticCustomError("headline_kind", message),
                loc=("headline",), input=v.headline)])
        return v

    @model_serializer(mode="wrap")
    def _omit_no_compare_scorers(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a spec with one scorer dumps as before the field existed: its digest (nightly reference) and keys stay put
        out: dict[str, Any] = handler(self)
        if not out.get("compare_scorers"):
            out.pop("compare_scorers", None)
        return out

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: cs.CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # what the before-validator accepts: `scoring` may also be a non-empty list of scorers
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        one = target.get("properties", {}).get("scoring")
        if one is not None:
            described = {k: v for k, v in one.items() if k not in {"description", "default"}}
            target["properties"]["scoring"] = {
                **{k: v for k, v in one.items() if k in {"description", "default"}},
                "anyOf": [described, {"type": "array", "items": described, "minItems": 1}]}
        return schema

    def generation_for(self, model: ModelSpec) -> GenerationSpec:
        """The generation settings a model's generate steps use: the spec's, then the model's own over them."""
        return self.generation if model.generation is None else model.generation.apply(self.generation)

    def all_scorers(self) -> list[Any]:
        """The scoring scorer first, then each compare scorer: what one score step runs."""
        return [self.scoring, *self.compare_scorers]

    @field_validator("store")
    @classmethod
    def _store(cls, v: str) -> str:
        if not (v.startswith("file://") or v.startswith("s3://")):
            raise ValueError("must be a file:// or s3:// URI")
        return v

    @model_validator(mode="after")
    def _unique_ids(self) -> ExperimentSpec:
        for what, ids in (("models", [m.id for m in self.models]), ("prompts", [p.id for p in self.prompts])):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"{what}: duplicate id {', '.join(dup)}")
        dumps = [json.dumps(sc.model_dump(mode="json"), sort_keys=True) for sc in self.all_scorers()]
        for i, d in enumerate(dumps[1:]):
            if d in dumps[: i + 1]:
                raise ValueError(f"compare_scorers[{i}] (scoring[{i + 1}] in the list form): the same scorer "
                                 f"twice ({d})")
        for i, m in enumerate(self.models):
            if m.generation is not None:
                try:
                    m.generation.apply(self.generation)
                except ValidationError as exc:
                    why = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
                    raise ValueError(f"models[{i}].generation ({m.id}) over the spec's generation: {why}") from None
        a = self.analysis
        if a is not None and a.prompt_set and a.prompt_set not in {p.id for p in self.prompts}:
            raise ValueError(f"analysis.prompt_set: no prompt set with id {a.prompt_set!r}")
        for path, values in self.matrix.items():
            if not isinstance(values, list) or not values:
                raise ValueError(f"matrix.{path}: must be a non-empty list of values")
            if path.split(".")[0] in {"name", "store", "matrix", "variants", "resources"} or path in ONE_PER_REPORT:
                raise ValueError(f"matrix.{path}: this field cannot vary across settings")
        for i, variant in enumerate(self.variants):
            for path in variant:
                if path.split(".")[0] in {"name", "store", "matrix", "variants", "resources"} or path in ONE_PER_REPORT:
                    raise ValueError(f"variants[{i}].{path}: this field cannot vary across settings")
        return self


ModelSpec.model_rebuild()  # its `generation` field names ModelGeneration, defined further down
