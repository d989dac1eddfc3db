"""What a plan will cost before it is submitted: GPU-hours, generations, scored texts, Perspective-days.

Pure: reads only the plan's step manifests (no data, no network). Every number comes from a
stated assumption, so the result is an estimate, not a measurement:

* prompt counts per language: ``limit_per_language`` when set, else the known sizes of the
  bundled and RTP-LX sets below (a ``jsonl:`` set of unknown size is assumed, and flagged);
* training rows: the known sizes of Lee et al.'s pairs and ParaDetox, times the epochs the trainer
  will use (the recipe in ``xdetox.spec.recipes`` resolved for the model's family);
* throughput per step kind and model size class, on one NVIDIA H100 80GB (``Throughput``).

GPU-hours assume one GPU per GPU step (the spec's default resources); Perspective scoring uses
no GPU but takes ``texts / qps`` seconds of wall time, reported as Perspective-days.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from xdetox.kinds import scorers as scorer_kinds
from xdetox.kinds import steps as step_kinds
from xdetox.manifest import StepManifest
from xdetox.plan.model import Plan
from xdetox.spec.recipes import model_family
from xdetox.spec.recipes import resolve as resolve_recipe

# --------------------------------------------------------------------------- known data sizes
#: RTP-LX v0.2 prompts per language (line counts of RTP_LX_<LANG>.json, Dec 2023 release; 18,328 in all)
RTP_LX_PROMPTS: Mapping[str, int] = {
    "ar": 1051, "cs": 1038, "de": 1029, "en": 999, "es": 1098, "fr": 1038, "hi": 1115, "id": 1099,
    "it": 1113, "ja": 1070, "ko": 1099, "nl": 1075, "pl": 1099, "pt": 1095, "ru": 1225, "sv": 1049,
    "zh": 1036,
}
RTP_LX_DEFAULT = 1000  # a language RTP-LX does not list: about the per-language mean
XLING_PROMPTS = 200  # bundled:xling-prompts-200: 200 parallel prompts per language
#: multilingual ParaDetox: 400 pairs per language, 300 train / 100 test (both split schemes)
PARADETOX_ROWS: Mapping[str, int] = {"train": 300, "test": 100, "all": 400}
LEE_PAIRS = 24_576  # Lee et al. 2024 English DPO pairs (paper 1's training set)
UNKNOWN_JSONL_ROWS = 1000  # a user's jsonl: set or training file of unknown size

#: tokens processed per training example (prompt + completion; DPO: chosen and rejected)
TOKENS_PER_EXAMPLE: Mapping[str, int] = {
    "dpo": 2 * 96,  # Lee et al. pairs: ~32-token prompt + ~64-token continuation, twice
    "sft": 64,  # ParaDetox: a short toxic sentence and its neutral rewrite, with the template
}
DPO_REFERENCE_OVERHEAD = 1.33  # the frozen reference model's forward pass: ~1/3 of forward+backward
PROMPT_TOKENS = 32  # mean prompt length, for perplexity/alignment forward passes

# --------------------------------------------------------------------------- model sizes
#: parameters (billions) of models whose names do not say it
KNOWN_PARAMS_B: Mapping[str, float] = {
    "ai-forever/mgpt": 1.3, "google/mt5-large": 1.2, "google/mt5-xl": 3.7, "google/mt5-xxl": 13.0,
    "gpt2": 0.124, "builtin:tiny": 0.001,
}
_SIZE = re.compile(r"(?<![a-z0-9])(\d+(?:\.\d+)?)b(\d)?(?![a-z])", re.IGNORECASE)


def params_billions(source: str) -> float | None:
    """Parameters of a model from its name: '7b1' -> 7.1, '1.3B' -> 1.3, '8B' -> 8; None if unknown."""
    s = source.lower().rstrip("/")
    if s in KNOWN_PARAMS_B:
        return KNOWN_PARAMS_B[s]
    for name, size in KNOWN_PARAMS_B.items():
        if s.endswith("/" + name.split("/")[-1]) and "/" in name:
            return size
    m = _SIZE.search(s.split("/")[-1]) or _SIZE.search(s)
    if m is None:
        return None
    whole, frac = m.group(1), m.group(2)
    return float(f"{whole}.{frac}") if frac and "." not in whole else float(whole)


def size_class(source: str) -> str:
    """tiny (<0.5B), small (<=4B), medium (<=9B), large; an unnamed size counts as medium."""
    b = params_billions(source)
    if b is None:
        return "medium"
    if b < 0.5:
        return "tiny"
    if b <= 4:
        return "small"
    return "medium" if b <= 9 else "large"


# --------------------------------------------------------------------------- throughput
@dataclass(frozen=True)
class Throughput:
    """Per-step throughput on one H100 80GB, by model size class. Override any of them.

    Derivations (stated so a user can replace them with their own measurements):
    * training: 6·N FLOPs per token (Kaplan et al. 2020) at ~40% of the H100's 989 TFLOP/s bf16
      dense peak: ~400 TFLOP/s / (6·N). small = 1.5B -> ~44k tok/s; medium = 8B -> ~8k;
      large = 13B -> ~5k. QLoRA: no weight gradients but 4-bit dequantisation and lower
      utilisation: about 40% of full fine-tuning's rate, as commonly reported for 7-8B QLoRA.
    * generation (vLLM, offline batch, short outputs): aggregate output tokens/s, the range
      vLLM's own throughput benchmarks report for 1-8B models on one H100; the transformers
      backend is taken as 10x slower.
    * scoring: a base-size multilingual classifier (XLM-R class) on short texts in batches of 256;
      the lexicon scorer on one CPU core (Aho-Corasick); Perspective at the spec's qps.
    * forward-only passes (perplexity, alignment): 3x the full-training token rate (2·N vs 6·N).
    * fixed cost per GPU step: pod start, image pull, loading weights from S3 (~1-2 GB/s) and,
      for vLLM, engine start (FACTS: 31 s for a tiny model): more shards cost more of it.
    """

    train_tokens_per_s: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: {
        "tiny": {"full": 200_000, "lora": 200_000, "qlora": 100_000},
        "small": {"full": 40_000, "lora": 40_000, "qlora": 16_000},
        "medium": {"full": 8_000, "lora": 8_000, "qlora": 3_200},
        "large": {"full": 5_000, "lora": 5_000, "qlora": 2_000},
    })
    generate_tokens_per_s: Mapping[str, float] = field(default_factory=lambda: {
        "tiny": 50_000, "small": 20_000, "medium": 8_000, "large": 4_000,
    })
    step_overhead_s: Mapping[str, float] = field(default_factory=lambda: {
        "tiny": 10, "small": 90, "medium": 240, "large": 480,
    })
    transformers_slowdown: float = 10.0
    classifier_texts_per_s: float = 1_500.0
    lexicon_texts_per_s: float = 20_000.0
    forward_speedup: float = 3.0
    gpu: str = "NVIDIA H100 80GB"

    def forward_tokens_per_s(self, cls: str) -> float:
        return self.train_tokens_per_s[cls]["full"] * self.forward_speedup


DEFAULT_THROUGHPUT = Throughput()


# --------------------------------------------------------------------------- result
@dataclass
class KindEstimate:
    kind: str
    steps: int = 0
    gpu_hours: float = 0.0
    generations: int = 0
    scored_texts: int = 0
    perspective_days: float = 0.0
    train_examples: int = 0


@dataclass
class Estimate:
    by_kind: dict[str, KindEstimate]
    gpu: str
    assumptions: list[str]

    @property
    def total(self) -> KindEstimate:
        t = KindEstimate("total")
        for k in self.by_kind.values():
            t.steps += k.steps
            t.gpu_hours += k.gpu_hours
            t.generations += k.generations
            t.scored_texts += k.scored_texts
            t.perspective_days += k.perspective_days
            t.train_examples += k.train_examples
        return t


# --------------------------------------------------------------------------- counting
def prompts_per_language(prompt_set: Mapping[str, Any], language: str) -> tuple[int, str | None]:
    """Prompts of one language in a prompt set (a PromptSet dump), and a note when it is a guess."""
    source = str(prompt_set.get("source", ""))
    limit = prompt_set.get("limit_per_language")
    if source.startswith("bundled:xling-prompts"):
        known: int | None = XLING_PROMPTS
    elif source.startswith("rtp-lx:"):
        known = RTP_LX_PROMPTS.get(language, RTP_LX_DEFAULT)
    elif source.startswith("paradetox:"):
        known = PARADETOX_ROWS[str(prompt_set.get("paradetox_split", "test"))]
    else:
        known = None
    if known is None:
        if limit:
            return int(limit), None
        return UNKNOWN_JSONL_ROWS, f"{source}: size unknown, assumed {UNKNOWN_JSONL_ROWS} prompts per language"
    return (min(int(limit), known) if limit else known), None


def prompt_count(prompt_set: Mapping[str, Any]) -> tuple[int, list[str]]:
    notes: list[str] = []
    total = 0
    for lang in prompt_set.get("languages", []):
        n, note = prompts_per_language(prompt_set, lang)
        total += n
        if note and note not in notes:
            notes.append(note)
    return total, notes


def _shard_share(total: int, step: StepManifest) -> int:
    """The part of ``total`` items that falls to this shard (contiguous split, as the steps do)."""
    if step.shard is None:
        return total
    i, n = step.shard.index, step.shard.count
    return total * (i + 1) // n - total * i // n


def train_examples(training: Mapping[str, Any]) -> tuple[int, str | None]:
    """Training rows one epoch sees."""
    data = training.get("data") or {}
    fmt = data.get("format")
    fraction = float(data.get("fraction", 1.0))
    langs = data.get("languages") or ["en"]
    note = None
    if fmt == "lee-toxicity-pairs":
        rows = LEE_PAIRS
    elif fmt == "paradetox":
        rows = sum(int(PARADETOX_ROWS[str(data.get("split", "train"))] * fraction) for _ in langs)
    else:
        rows = UNKNOWN_JSONL_ROWS * len(langs)
        note = f"training data {data.get('path')}: size unknown, assumed {UNKNOWN_JSONL_ROWS} rows per language"
    if fmt == "lee-toxicity-pairs":
        rows = int(rows * fraction)
    max_rows = data.get("max_rows")
    if max_rows:
        rows = min(rows, int(max_rows))
    return rows, note


def _train_tokens(training: Mapping[str, Any], model_source: str | None = None) -> tuple[float, int, list[str]]:
    method = str(training.get("method", "dpo"))
    # the epochs, batch and length the trainer will use: the recipe resolved for this model's family
    hyper, _ = resolve_recipe(dict(training), model_source)
    rows, note = train_examples(training)
    notes = [note] if note else []
    per_example = TOKENS_PER_EXAMPLE.get(method, 64)
    if hyper.get("max_length"):
        per_example = min(per_example, int(hyper["max_length"]) * (2 if method == "dpo" else 1))
    if hyper.get("max_steps"):
        batch = int(hyper["batch_size"]) * int(hyper.get("gradient_accumulation_steps") or 1)
        examples = int(hyper["max_steps"]) * batch
    else:
        # paper 1 stops early: its epochs are an upper bound, and so is this estimate
        examples = int(rows * float(hyper["epochs"]))
    tokens = float(examples * per_example)
    if method == "dpo":
        tokens *= DPO_REFERENCE_OVERHEAD
    return tokens, examples, notes


@dataclass
class EstimateContext:
    """What a step kind's estimate hook reads and adds to while the estimator walks the plan."""

    throughput: Throughput
    by_key: Mapping[str, StepManifest]
    notes: list[str] = field(default_factory=list)
    #: generations each generate step produces (a score step counts its inputs')
    generations_of: dict[str, int] = field(default_factory=dict)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def estimate_train(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    p, throughput = step.params, ctx.throughput
    cls = size_class(str(p["model"]["source"]))
    mode = str((p["training"].get("peft") or {}).get("mode", "full"))
    tokens, examples, tnotes = _train_tokens(p["training"], str(p["model"]["source"]))
    for t in tnotes:
        ctx.note(t)
    r.train_examples += examples
    r.gpu_hours += (tokens / throughput.train_tokens_per_s[cls][mode] + throughput.step_overhead_s[cls]) / 3600


def runs_on_transformers(gen: Mapping[str, Any]) -> bool:
    """Settings vLLM's sampler lacks (beams, no-repeat n-grams) run with transformers whatever the spec's
    backend (as xdetox.generation.select.backend_for_model decides at run time)."""
    return int(gen.get("num_beams") or 1) > 1 or gen.get("no_repeat_ngram_size") is not None


def estimate_generate(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    p, throughput = step.params, ctx.throughput
    total, pnotes = prompt_count(p["prompts"])
    for t in pnotes:
        ctx.note(t)
    gen = p["generation"]
    n = _shard_share(total, step) * int(gen["samples"])
    ctx.generations_of[step.key] = n
    r.generations += n
    cls = size_class(str(p["model"]["source"]))
    rate = throughput.generate_tokens_per_s[cls]
    # vLLM does not serve T5-family encoder-decoders: the step generates them with transformers
    # (told by the model's config at run time; the planner reads no file, so by the family's name here)
    if (gen.get("backend") == "transformers" or model_family(str(p["model"]["source"])) == "mt5"
            or runs_on_transformers(gen)):
        rate /= throughput.transformers_slowdown
    beams = int(gen.get("num_beams") or 1)  # every beam is decoded: beams x the tokens of one sample
    r.gpu_hours += (n * beams * int(gen["max_new_tokens"]) / rate + throughput.step_overhead_s[cls]) / 3600


def estimate_score(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    p, throughput = step.params, ctx.throughput
    texts = sum(ctx.generations_of.get(k, 0) for k in step.inputs.get("generations", []))
    r.scored_texts += texts
    for dump in [p.get("scorer") or scorer_kinds.default_spec(), *(p.get("also") or [])]:
        scorer = scorer_kinds.validate_spec(dump)
        cost = scorer_kinds.get(str(scorer.kind)).cost(scorer, texts, throughput)  # type: ignore[attr-defined]
        r.perspective_days += cost.api_days  # the scorer kind's own cost: API days, GPU hours, or nothing (lexicon)
        r.gpu_hours += cost.gpu_hours
        deadline = getattr(scorer, "shard_deadline_s", None)
        if deadline and cost.api_days * 86400 > deadline:
            # each attempt then stops at the deadline and the workflow's retries finish it from the cache
            ctx.note(f"{scorer.kind} score shards of {texts:,} texts need {cost.api_days * 24:,.1f} h of API "  # type: ignore[attr-defined]
                     f"time, more than shard_deadline_s ({deadline / 3600:g} h): raise sharding.generate "
                     "(smaller shards), the qps, or the deadline (and the score-cpu pod deadline with it)")


def estimate_perplexity(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    """A forward pass of the reference LM over each generated row (prompt + continuation)."""
    ppl, throughput = step.params["perplexity"], ctx.throughput
    texts = sum(ctx.generations_of.get(k, 0) for k in step.inputs.get("generations", []))
    gen_tokens = _generation_tokens(ctx.by_key, step)
    cls = size_class(str(ppl["reference"]))
    r.gpu_hours += (texts * (PROMPT_TOKENS + gen_tokens) / throughput.forward_tokens_per_s(cls)
                    + throughput.step_overhead_s[cls]) / 3600


def estimate_align(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    p, throughput = step.params, ctx.throughput
    al = p.get("alignment") or {}
    texts = int(al.get("limit", XLING_PROMPTS)) * len(p.get("languages") or [])
    cls = size_class(str(p["model"]["source"]))
    r.gpu_hours += (texts * PROMPT_TOKENS / throughput.forward_tokens_per_s(cls)
                    + throughput.step_overhead_s[cls]) / 3600


def estimate_analyze(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    """Paper 1's neuron analysis decodes its prompt set with transformers (hooks need it, not vLLM):
    once for the base model, once more for the tuned one, once per intervention offset, and the
    neuron selection's pass over one language (counted as a whole pass: an upper bound)."""
    p, throughput = step.params, ctx.throughput
    prompts, pnotes = prompt_count(p["prompts"])
    for t in pnotes:
        ctx.note(t)
    iv = p.get("intervention") or {}
    offsets = len(iv.get("offsets") or [iv.get("offset")]) if iv else 0
    selecting = p.get("neurons") is None and bool(p.get("positive_activation", False))
    passes = 1 + (p.get("tuned_model") is not None) + offsets + selecting
    cls = size_class(str(p["model"]["source"]))
    rate = throughput.generate_tokens_per_s[cls] / throughput.transformers_slowdown
    r.gpu_hours += (prompts * passes * int(p.get("max_new_tokens", 20)) / rate + throughput.step_overhead_s[cls]) / 3600


def estimate_analyze_score(step: StepManifest, r: KindEstimate, ctx: EstimateContext) -> None:
    """The run's scorer judges the analysis's base continuations and each offset's: its cost
    (Perspective: API days in a CPU pod; a local scorer's GPU time when it asks for one)."""
    (upstream,) = [ctx.by_key[k] for k in step.inputs.get("analysis", [])]
    p, throughput = upstream.params, ctx.throughput
    prompts, _ = prompt_count(p["prompts"])  # the analyze step's estimate has noted what it assumes
    iv = p.get("intervention") or {}
    offsets = len(iv.get("offsets") or [iv.get("offset")]) if iv else 0
    texts = prompts * (1 + offsets)
    scorer = scorer_kinds.validate_spec(step.params["scorer"])
    cost = scorer_kinds.get(str(scorer.kind)).cost(scorer, texts, throughput)  # type: ignore[attr-defined]
    r.scored_texts += texts
    r.perspective_days += cost.api_days
    r.gpu_hours += cost.gpu_hours


def _hook(entry: str) -> Callable[[StepManifest, KindEstimate, EstimateContext], None]:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def estimate(plan: Plan, throughput: Throughput = DEFAULT_THROUGHPUT) -> Estimate:
    """GPU-hours, generations, scored texts and Perspective-days per step kind of ``plan``.

    Each step kind's declaration names its estimate hook (``StepKind.estimate``); a kind without
    one (build_model, evaluate, report: CPU minutes) counts its steps only.
    """
    kinds: dict[str, KindEstimate] = {}
    ctx = EstimateContext(throughput=throughput, by_key=plan.by_key())
    for step in plan.steps:  # topological: a score step's generate input is already counted
        r = kinds.setdefault(step.kind, KindEstimate(step.kind))
        r.steps += 1
        hook = step_kinds.get(step.kind).estimate
        if hook:
            _hook(hook)(step, r, ctx)
    ctx.note(f"throughput: one {throughput.gpu} per GPU step; see xdetox.plan.estimate.Throughput for the figures")
    ctx.note("prompt counts: limit_per_language if set, else RTP-LX v0.2 per-language sizes (~1,000), "
             "xling 200, ParaDetox 300 train / 100 test per language")
    return Estimate(by_kind=kinds, gpu=throughput.gpu, assumptions=ctx.notes)


def _generation_tokens(by_key: Mapping[str, StepManifest], score_step: StepManifest) -> int:
    for k in score_step.inputs.get("generations", []):
        g = by_key.get(k)
        if g is not None:
            return int(g.params["generation"]["max_new_tokens"])
    return 0


def evaluation_cells(plan: Plan) -> int:
    """(setting, model, evaluation language) cells: the unit the papers count as 'settings'.

    Paper 2's 504 = 14 paradigm settings x 4 models x 9 languages: each setting's evaluate step
    lists its arms; the base and tuned arm of a model in a setting are one cell per language.
    """
    by_key = plan.by_key()
    cells = 0
    for st in plan.settings:
        langs: dict[str, set[str]] = {}
        for arm in by_key[st.evaluate_key].params.get("arms", []):
            langs.setdefault(str(arm["model_id"]), set()).update(arm.get("languages", []))
        cells += sum(len(v) for v in langs.values())
    return cells


def render_estimate(est: Estimate) -> Any:
    """A rich Table of the estimate, one row per step kind and a total."""
    from rich.table import Table

    table = Table(title=f"estimated cost (one {est.gpu} per GPU step; an estimate, not a measurement)")
    for col in ("kind", "steps", "GPU-hours", "generations", "scored texts", "Perspective-days", "train examples"):
        table.add_column(col, justify="left" if col == "kind" else "right")

    def fmt_row(k: KindEstimate, bold: bool = False) -> list[str]:
        cells = [k.kind, f"{k.steps:,}", f"{k.gpu_hours:,.1f}", f"{k.generations:,}", f"{k.scored_texts:,}",
                 f"{k.perspective_days:,.1f}", f"{k.train_examples:,}"]
        return [f"[bold]{c}[/bold]" for c in cells] if bold else cells

    for k in est.by_kind.values():
        table.add_row(*fmt_row(k))
    table.add_row(*fmt_row(est.total, bold=True))
    return table
