"""A model's own generation settings (``models[].generation``): paper 2's scripts decode each model
their own way (BLOOM X-FT and mT5 P-FT 100 new tokens, mT5 X-FT beam-sample with no repeated
2-grams, greedy M-FT, mT5's "detoxify:" prompt). Declared in the spec, shown by the plan, applied by
the generate step, recorded in the rows' settings; checked on a tiny causal LM and a tiny mT5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.generation_fixtures import build_tiny_llama, generate_manifest, read_rows, write_prompts
from tests.training_fixtures import build_tiny_mt5
from xdetox.generation.backend import Request, Sampling
from xdetox.generation.hf import TransformersBackend, row_seed
from xdetox.spec import load_spec
from xdetox.spec.errors import SpecError
from xdetox.steps.runner import run_step
from xdetox.store import open_store


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("gen") / "llama")


@pytest.fixture(scope="module")
def mt5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_mt5(tmp_path_factory.mktemp("gen") / "mt5-tiny")


def _spec(tmp_path: Path, **extra: Any) -> Path:
    doc: dict[str, Any] = {
        "name": "per-model", "seed": 3,
        "models": [{"id": "a", "source": "builtin:tiny"},
                   {"id": "b", "source": "builtin:tiny",
                    "generation": {"max_new_tokens": 100, "num_beams": 4, "no_repeat_ngram_size": 2,
                                   "min_new_tokens": 9, "template": "detoxify: {prompt}"}}],
        "prompts": [{"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en"], "limit_per_language": 2,
                     "template": "Complete the sentence: {prompt}"}],
        "generation": {"samples": 1, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 50, "top_k": 50},
        "scoring": {"kind": "lexicon"}, "compare_base": True, **extra,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _setting_steps(p: Any, setting: Any) -> set[str]:
    """Keys of the steps a setting's evaluation reads, transitively."""
    by_key = p.by_key()
    todo, seen = [setting.evaluate_key], set()
    while todo:
        k = todo.pop()
        if k not in seen and k in by_key:
            seen.add(k)
            todo.extend(x for keys in by_key[k].inputs.values() for x in keys)
    return seen


def test_overrides_merge_into_the_plan_and_leave_other_models_alone(tmp_path: Path) -> None:
    from xdetox.cli.plan_extras import plan_json
    from xdetox.plan import plan

    spec = load_spec(_spec(tmp_path))
    doc = plan_json(plan(spec))
    gens = {s["params"]["model"]["id"]: s["params"] for s in doc["steps"] if s["kind"] == "generate"}
    a, b = gens["a"], gens["b"]
    assert a["generation"]["max_new_tokens"] == 50 and "num_beams" not in a["generation"]
    assert a["prompts"]["template"] == "Complete the sentence: {prompt}"
    # b: the spec's settings with its own over them, as the plan shows them
    assert (b["generation"]["max_new_tokens"], b["generation"]["num_beams"], b["generation"]["no_repeat_ngram_size"],
            b["generation"]["min_new_tokens"], b["generation"]["top_k"], b["generation"]["temperature"],
            b["generation"]["top_p"]) == (100, 4, 2, 9, 50, 0.7, 0.9)
    assert b["prompts"]["template"] == "detoxify: {prompt}" and b["prompts"]["id"] == "p"
    # the model reference in every step's key is the model alone: overrides do not touch it
    assert set(b["model"]) == {"id", "source", "revision", "dtype", "architecture", "arm"}


def test_unset_settings_are_absent_from_dumps(tmp_path: Path) -> None:
    """A spec that uses none of this dumps exactly as before (spec digests and step keys stay put)."""
    from xdetox.spec.models import ExperimentSpec

    spec = ExperimentSpec.model_validate({"name": "x", "models": [{"id": "a", "source": "builtin:tiny"}],
                                          "prompts": [{"id": "p", "source": "bundled:x", "languages": ["en"]}]})
    dump = spec.model_dump(mode="json")
    assert set(dump["models"][0]) == {"id", "source", "revision", "dtype", "architecture"}
    assert set(dump["generation"]) == {"samples", "temperature", "top_p", "max_new_tokens", "seed", "backend",
                                       "batch_size", "chunk_prompts", "chat_template"}


def test_a_variant_sets_one_models_setting_by_its_id(tmp_path: Path) -> None:
    from xdetox.plan import plan

    path = _spec(tmp_path, variants=[{"label": "short"}, {"label": "long a", "models.a.generation.max_new_tokens": 100}])
    p = plan(load_spec(path))
    tokens = {(st.overrides["label"], s.params["model"]["id"], s.params["generation"]["max_new_tokens"])
              for st in p.settings for s in p.steps if s.kind == "generate" and s.key in _setting_steps(p, st)}
    assert tokens == {("short", "a", 50), ("short", "b", 100), ("long a", "a", 100), ("long a", "b", 100)}


@pytest.mark.parametrize(("change", "message"), [
    ({"variants": [{"models.zz.generation.max_new_tokens": 5}]}, "variants[0].models.zz.generation.max_new_tokens"),
    ({"models": [{"id": "a", "source": "builtin:tiny", "generation": {"min_new_tokens": 60}}]},
     "models[0].generation (a)"),
    ({"models": [{"id": "a", "source": "builtin:tiny", "generation": {"template": "no placeholder"}}]},
     "template must contain {prompt}"),
])
def test_bad_overrides_are_named(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as err:
        load_spec(_spec(tmp_path, **change))
    assert message in str(err.value)


def test_greedy_and_top_k_one_are_the_argmax_decode(llama: Path) -> None:
    """do_sample false, and sampling with top_k 1 at any temperature, both give the argmax path,
    worked out here one forward pass at a time."""
    import torch

    backend = TransformersBackend(llama, dtype="float32", device="cpu")
    model, tok = backend.model, backend.tokenizer
    prompt = "You are such a"
    ids = tok([prompt], return_tensors="pt")["input_ids"][0].tolist()
    expected: list[int] = []
    with torch.inference_mode():
        for _ in range(6):
            nxt = int(model(torch.tensor([ids + expected])).logits[0, -1].argmax())
            expected.append(nxt)
            if nxt == tok.eos_token_id:
                break
    greedy = backend.generate([Request(prompt, seed=1)], Sampling(2, 0.7, 0.9, 6, do_sample=False))[0]
    top1 = backend.generate([Request(prompt, seed=1)], Sampling(2, 5.0, 1.0, 6, top_k=1))[0]
    want = tok.decode(expected, skip_special_tokens=True)
    assert [c.text for c in greedy] == [want, want] and [c.text for c in top1] == [want, want]


def test_beam_sample_is_transformers_beam_sample_per_prompt_and_seed(mt5: Path) -> None:
    """num_beams > 1: each (prompt, sample) is transformers' own beam-sample with the paper's settings,
    under a generator seeded from (prompt seed, sample index); independent of batch-mates; no repeated
    2-gram; the caller's random state is left as it was."""
    import torch

    backend = TransformersBackend(mt5, dtype="float32", device="cpu")
    sampling = Sampling(1, 0.7, 0.9, 8, min_new_tokens=4, num_beams=4, no_repeat_ngram_size=2)
    prompts = ["you are a", "what the hell is this thing"]
    torch.manual_seed(99)
    before = torch.rand(3)
    torch.manual_seed(99)
    got = backend.generate([Request(p, seed=10 + i) for i, p in enumerate(prompts)], sampling)
    assert torch.equal(torch.rand(3), before)
    model, tok = backend.model, backend.tokenizer
    for i, (prompt, conts) in enumerate(zip(prompts, got, strict=True)):
        enc = tok([prompt], return_tensors="pt")
        for s, cont in enumerate(conts):
            torch.manual_seed(row_seed(10 + i, s))
            out = model.generate(**enc, num_beams=4, do_sample=True, temperature=0.7, top_p=0.9, top_k=0,
                                 no_repeat_ngram_size=2, min_new_tokens=4, max_new_tokens=8)[0, 1:].tolist()
            assert cont.text == tok.decode(out, skip_special_tokens=True)
            content = [t for t in out if t not in (tok.pad_token_id, tok.eos_token_id)]
            assert len(content) >= 4
            bigrams = list(zip(content, content[1:], strict=False))
            assert len(bigrams) == len(set(bigrams))
    alone = backend.generate([Request(prompts[1], seed=11)], sampling)
    assert alone[0] == got[1]


def test_the_step_applies_and_records_the_settings(llama: Path, tmp_path: Path) -> None:
    """The generate step samples with what its params say and writes it into every row's settings."""
    prompts = write_prompts(tmp_path / "p.jsonl", languages=("en",), per_language=2)
    m = generate_manifest(llama, prompts, languages=("en",), samples=1, max_new_tokens=5)
    m.params["generation"].update({"do_sample": False, "min_new_tokens": 5, "no_repeat_ngram_size": 2,
                                   "repetition_penalty": 1.2})
    m = m.model_copy(update={"key": m.compute_key("generate", m.params, {}, None)})
    store = open_store((tmp_path / "s").as_uri())
    record, _ = run_step(m, store, log=lambda msg: None)
    rows = read_rows(store, record)
    assert len(rows) == 2
    for r in rows:
        assert r["settings"] == {"temperature": 0.9, "top_p": 0.8, "max_new_tokens": 5, "samples": 1,
                                 "min_new_tokens": 5, "no_repeat_ngram_size": 2, "repetition_penalty": 1.2,
                                 "do_sample": False}
        assert r["num_tokens"] == 5  # no end of sequence before 5 tokens, and no more than 5
    # the same decode worked out by hand: penalty 1.2 on every token already in the sequence (divide a
    # positive logit, multiply a negative one), no 2-gram twice, no end of sequence before 5 tokens, argmax
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(llama), AutoTokenizer.from_pretrained(llama)
    for r in rows:
        ids = tok(r["prompt_text"])["input_ids"]
        start = len(ids)
        with torch.inference_mode():
            while len(ids) - start < 5:
                logits = model(torch.tensor([ids])).logits[0, -1].clone()
                for t in set(ids):
                    logits[t] = logits[t] / 1.2 if logits[t] > 0 else logits[t] * 1.2
                for a, b in zip(ids, ids[1:], strict=False):
                    if a == ids[-1]:
                        logits[b] = float("-inf")
                logits[tok.eos_token_id] = float("-inf")
                ids.append(int(logits.argmax()))
        assert r["text"] == tok.decode(ids[start:], skip_special_tokens=True)
    json.dumps(rows)  # rows stay plain JSON


def test_beams_cost_beams_times_the_tokens_at_transformers_rate() -> None:
    """The planner's work for a generate group: samples x beams x new tokens at the size class's rate,
    divided by transformers' slowdown when the settings (beams, no-repeat n-grams) leave vLLM out."""
    from xdetox.plan.estimate import DEFAULT_THROUGHPUT as T
    from xdetox.plan.shards import generate_work

    params: dict[str, Any] = {
        "model": {"source": "bigscience/bloom-7b1"},
        "prompts": {"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en", "de"],
                    "limit_per_language": 10},
        "generation": {"samples": 2, "max_new_tokens": 30, "backend": "vllm"},
    }
    plain = generate_work(params, T)
    rate = T.generate_tokens_per_s[plain.size]
    assert plain.backend == "vllm" and plain.work_s == pytest.approx(20 * 2 * 30 / rate)
    params["generation"] |= {"num_beams": 4, "no_repeat_ngram_size": 2}
    beams = generate_work(params, T)
    assert beams.backend == "transformers"
    assert beams.work_s == pytest.approx(20 * 2 * 4 * 30 / (rate / T.transformers_slowdown))


def test_a_specs_beam_sampled_mt5_end_to_end(tmp_path: Path, mt5: Path) -> None:
    """From a spec to rows: the model's own settings (beam-sample, no repeated 2-grams, its template) reach
    the generate step through the plan, and each row is transformers' beam-sample of its prompt under the
    generator seeded from (row seed, sample index)."""
    import torch
    from rich.console import Console
    from transformers import AutoTokenizer, MT5ForConditionalGeneration

    from xdetox.executors.local import run_plan
    from xdetox.executors.publish import publish, run_store
    from xdetox.plan import plan

    spec = {
        "name": "mt5-beams", "store": (tmp_path / "store").as_uri(), "seed": 5,
        "models": [{"id": "mt5", "source": mt5.as_uri(), "dtype": "float32",
                    "generation": {"num_beams": 2, "no_repeat_ngram_size": 2, "min_new_tokens": 2,
                                   "template": "detoxify: {prompt}"}}],
        "prompts": [{"id": "p", "source": "bundled:xling-prompts-200", "languages": ["en"], "limit_per_language": 2,
                     "template": "Complete the sentence: {prompt}"}],
        "generation": {"samples": 2, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 6, "top_k": 50,
                       "backend": "transformers"},
        "scoring": {"kind": "lexicon"}, "compare_base": True,
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    p = plan(load_spec(path))
    rs = run_store(open_store(spec["store"]), p.run_id)
    publish(p, rs, path.read_text())
    result = run_plan(p, rs, console=Console(quiet=True), show_progress=False, only=lambda s: s.kind == "generate")
    assert result.failed is None
    (g,) = [s for s in p.steps if s.kind == "generate"]
    rows = [json.loads(line) for k in rs.list(g.output_prefix + "/") if k.endswith(".jsonl")
            for line in rs.get_text(k).splitlines()]
    assert len(rows) == 2 * 2
    model, tok = MT5ForConditionalGeneration.from_pretrained(mt5), AutoTokenizer.from_pretrained(mt5)
    for r in rows:
        assert r["prompt_text"] == "detoxify: " + r["prompt"] and r["backend"] == "transformers"
        assert r["settings"] == {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 6, "samples": 2, "top_k": 50,
                                 "min_new_tokens": 2, "num_beams": 2, "no_repeat_ngram_size": 2}
        torch.manual_seed(row_seed(r["seed"], r["sample_index"]))
        out = model.generate(**tok([r["prompt_text"]], return_tensors="pt"), num_beams=2, do_sample=True,
                             temperature=0.7, top_p=0.9, top_k=50, no_repeat_ngram_size=2, min_new_tokens=2,
                             max_new_tokens=6)
        assert r["text"] == tok.decode(out[0, 1:], skip_special_tokens=True)
