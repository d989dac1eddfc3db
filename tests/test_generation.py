"""The generate step on the transformers backend and a tiny random Llama: sharding, resume after a
crash or a SIGKILL, per-prompt determinism, rows, digests and backend choice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.generation_fixtures import (
    REPO,
    build_tiny_llama,
    generate_manifest,
    read_rows,
    sort_key,
    write_prompts,
)
from xdetox.generation.backend import Request, Sampling
from xdetox.generation.digest import digest_from_folder, digest_from_record
from xdetox.generation.seeds import prompt_seed
from xdetox.generation.select import resolve_backend
from xdetox.generation.sharding import shard_items
from xdetox.manifest import Shard, StepManifest, commit_key, partial_prefix
from xdetox.prompts import PromptItem
from xdetox.records import GenerationRow
from xdetox.steps import registry
from xdetox.steps.runner import run_step
from xdetox.store import open_store
from xdetox.store.partial import PartialState, read_progress

SAMPLES = 2
CHUNK = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_prompts(tmp_path_factory.mktemp("prompts") / "p.jsonl", per_language=4)  # 12 prompts


def manifest(tiny: Path, prompts: Path, shard: Shard | None = None, **kw: Any) -> StepManifest:
    return generate_manifest(tiny, prompts, shard=shard, samples=SAMPLES, max_new_tokens=6, chunk_prompts=CHUNK,
                             **kw)


@pytest.fixture(scope="module")
def reference(tiny: Path, prompts: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The unsharded, uninterrupted run every other run is compared with."""
    store = open_store(tmp_path_factory.mktemp("ref").as_uri())
    record, cached = run_step(manifest(tiny, prompts), store, log=lambda m: None)
    assert not cached
    assert record.info["rows"] == 12 * SAMPLES and record.info["chunks_generated"] == 6
    return sorted(read_rows(store, record), key=sort_key)


def test_rows_follow_the_generation_schema(reference: list[dict[str, Any]], tiny: Path) -> None:
    assert len(reference) == 24
    for row in reference:
        GenerationRow.model_validate(row)
        assert row["backend"] == "transformers" and row["arm"] == "base" and row["model_id"] == "tiny"
        assert row["settings"] == {"temperature": 0.9, "top_p": 0.8, "max_new_tokens": 6, "samples": SAMPLES}
        assert 1 <= row["num_tokens"] <= 6
        assert row["prompt_text"] == row["prompt"]  # default template, no chat template
        assert row["text"] and not row["text"].startswith(row["prompt"][:10])  # the continuation only
        assert row["seed"] == prompt_seed(1234, row["language"], row["prompt_id"])
        assert row["model_digest"] == digest_from_folder(tiny)
    keys = [sort_key(r) for r in reference]
    assert len(set(keys)) == len(keys)
    assert {r["sample_index"] for r in reference} == {0, 1}
    # The samples of one prompt differ (they are samples, not copies) ...
    by_prompt: dict[tuple[str, str], set[str]] = {}
    for r in reference:
        by_prompt.setdefault((r["prompt_id"], r["language"]), set()).add(r["text"])
    assert sum(len(v) > 1 for v in by_prompt.values()) >= 10


def test_shards_concatenate_to_the_unsharded_output(
    reference: list[dict[str, Any]], tiny: Path, prompts: Path, tmp_path: Path
) -> None:
    store = open_store(tmp_path.as_uri())
    rows: list[dict[str, Any]] = []
    sizes = []
    for i in range(3):
        record, _ = run_step(manifest(tiny, prompts, Shard(index=i, count=3)), store, log=lambda m: None)
        assert [o.key for o in record.outputs] == [f"generations/g0/shard-{i:05d}-of-00003.jsonl"]
        part = read_rows(store, record)
        sizes.append(len(part))
        rows.extend(part)
    assert sizes == [8, 8, 8]
    assert sorted(rows, key=sort_key) == reference
    assert not [k for k in store.list("steps/") if "/partial/" in k]
    # More shards than prompts: a shard may own nothing, and still commits an empty file.
    record, _ = run_step(manifest(tiny, prompts, Shard(index=12, count=13)), store, log=lambda m: None)
    assert record.info["rows"] == 0 and read_rows(store, record) == []


def test_chat_template_needs_one(tiny: Path, prompts: Path, tmp_path: Path) -> None:
    m = manifest(tiny, prompts)
    m = m.model_copy(update={"params": {**m.params, "generation": {**m.params["generation"], "chat_template": True}}})
    with pytest.raises(ValueError, match="chat_template is true but the model's tokenizer has no chat template"):
        run_step(m, open_store(tmp_path.as_uri()), log=lambda msg: None)


def test_chunk_and_batch_size_do_not_change_the_samples(
    reference: list[dict[str, Any]], tiny: Path, prompts: Path, tmp_path: Path
) -> None:
    m = generate_manifest(tiny, prompts, samples=SAMPLES, max_new_tokens=6, chunk_prompts=12, batch_size=5)
    record, _ = run_step(m, open_store(tmp_path.as_uri()), log=lambda msg: None)
    assert record.info["chunks"] == 1
    assert sorted(read_rows(open_store(tmp_path.as_uri()), record), key=sort_key) == reference


def test_a_crashed_shard_resumes_without_loss_or_duplicates(
    reference: list[dict[str, Any]], tiny: Path, prompts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path.as_uri())
    m = manifest(tiny, prompts)
    real_put = PartialState.put_chunk
    puts = {"n": 0}

    def crashing_put(self: PartialState, *args: Any, **kwargs: Any) -> Any:  # crash right after the 2nd chunk is stored
        out = real_put(self, *args, **kwargs)
        puts["n"] += 1
        if puts["n"] >= 2:
            raise RuntimeError("simulated crash")
        return out

    monkeypatch.setattr(PartialState, "put_chunk", crashing_put)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_step(m, store, log=lambda msg: None)
    assert not store.exists(commit_key(m.key))
    prefix = partial_prefix(m.key)
    assert [k.rsplit("/", 1)[1] for k in store.list(prefix + "/")] == [
        "chunk-00000.jsonl", "chunk-00001.jsonl", "progress.json"]
    # 2 chunks of 2 prompts stored, of the shard's 12 (3 languages x 4 prompts): what status shows
    progress = read_progress(store, prefix)
    assert progress is not None and (progress.done, progress.total, progress.unit) == (4, 12, "prompts")
    assert not store.list("generations/")  # nothing a reader could take as done
    monkeypatch.setattr(PartialState, "put_chunk", real_put)
    record, cached = run_step(m, store, log=lambda msg: None)
    assert not cached
    assert record.info["chunks_reused"] == 2 and record.info["chunks_generated"] == 4
    assert sorted(read_rows(store, record), key=sort_key) == reference
    assert not store.list(prefix + "/")


def test_a_bad_chunk_is_regenerated(reference: list[dict[str, Any]], tiny: Path, prompts: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path.as_uri())
    m = manifest(tiny, prompts)
    partial = PartialState(store, partial_prefix(m.key), "prompts")
    good = [json.dumps(r) for r in reference if r["language"] == "de"][:4]
    store.put_text(partial.chunk_key(0), good[0] + "\n")  # a chunk with rows missing
    store.put_text(partial.chunk_key(1), "{not json\n")
    record, _ = run_step(m, store, log=lambda msg: None)
    assert record.info["chunks_reused"] == 0
    assert sorted(read_rows(store, record), key=sort_key) == reference


def test_a_sigkilled_shard_resumes(reference: list[dict[str, Any]], tiny: Path, prompts: Path, tmp_path: Path) -> None:
    """A real SIGKILL (no cleanup, no finally) in a child process, then a rerun in this one."""
    store_dir = tmp_path / "store"
    m = manifest(tiny, prompts)
    (tmp_path / "manifest.json").write_text(m.model_dump_json())
    # the fault is injected test-side: SIGKILL right after the 3rd chunk is stored
    code = (
        "import os, signal, sys; from pathlib import Path; from xdetox.manifest import StepManifest;"
        "from xdetox.steps.runner import run_step; from xdetox.store import open_store;"
        "from xdetox.store.partial import PartialState;"
        "real = PartialState.put_chunk; n = [0]\n"
        "def put(self, *a, **k):\n"
        "    out = real(self, *a, **k); n[0] += 1\n"
        "    if n[0] >= 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return out\n"
        "PartialState.put_chunk = put\n"
        "m = StepManifest.model_validate_json(Path(sys.argv[1]).read_text());"
        "run_step(m, open_store(sys.argv[2]), log=lambda s: None)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "manifest.json"), store_dir.as_uri()],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    store = open_store(store_dir.as_uri())
    assert not store.exists(commit_key(m.key))
    assert len([k for k in store.list(partial_prefix(m.key) + "/") if k.endswith(".jsonl")]) == 3
    record, _ = run_step(m, store, log=lambda msg: None)
    assert record.info["chunks_reused"] == 3
    assert sorted(read_rows(store, record), key=sort_key) == reference


def test_per_prompt_determinism_at_the_backend(tiny: Path) -> None:
    from xdetox.generation.hf import TransformersBackend

    backend = TransformersBackend(tiny, dtype="float32")
    sampling = Sampling(samples=3, temperature=0.9, top_p=0.8, max_new_tokens=6)
    a, b, c = Request("Hello there", 11), Request("Guten Tag", 12), Request("你好", 13)
    alone = backend.generate([a], sampling)[0]
    in_batch = backend.generate([c, b, a], sampling)[2]
    assert [x.text for x in alone] == [x.text for x in in_batch]
    other_seed = backend.generate([Request("Hello there", 99)], sampling)[0]
    assert [x.text for x in other_seed] != [x.text for x in alone]


def test_template_and_upstream_model_input(tiny: Path, prompts: Path, tmp_path: Path) -> None:
    """The model comes from an upstream step's outputs (as after build_model/train): the digest is
    taken from its commit record and equals the digest of the folder itself."""
    store = open_store(tmp_path.as_uri())

    def fake_build(ctx: Any) -> dict[str, Any]:
        ctx.put_dir("", tiny)
        return {}

    with registry.overridden({"build_model": fake_build}):
        up = StepManifest(kind="build_model", key="upstreammodel01", run_id="gen-test", label="build",
                          params={}, output_prefix="models/upstreammodel01")
        up_record, _ = run_step(up, store, log=lambda msg: None)
    m = manifest(tiny, prompts, template="Complete the sentence: {prompt}", languages=("zh",))
    m = m.model_copy(update={"inputs": {"model": [up.key]},
                             "params": {**m.params, "model": {**m.params["model"], "source": "builtin:tiny"}}})
    record, _ = run_step(m, store, log=lambda msg: None)
    rows = read_rows(store, record)
    assert len(rows) == 4 * SAMPLES
    assert all(r["prompt_text"] == "Complete the sentence: " + r["prompt"] for r in rows)
    assert {r["model_digest"] for r in rows} == {digest_from_record(up_record)} == {digest_from_folder(tiny)}


def test_prompt_seeds() -> None:
    assert prompt_seed(1234, "en", "xling-0000") == prompt_seed(1234, "en", "xling-0000")
    seeds = {prompt_seed(s, lang, f"p{i}") for s in (1, 2) for lang in ("en", "de") for i in range(500)}
    assert len(seeds) == 2000 and all(0 <= s < 2**31 for s in seeds)
    assert prompt_seed(1234, "en", "xling-0000") == 569325494  # stable across releases: reruns reuse rows


def test_sharding_is_balanced_disjoint_and_order_free() -> None:
    items = [PromptItem(f"id-{i}", lang, "x") for lang in ("zh", "en", "de") for i in range(7)]
    shards = [shard_items(items, i, 4) for i in range(4)]
    assert sorted(len(s) for s in shards) == [5, 5, 5, 6]
    flat = [it for s in shards for it in s]
    assert sorted(flat, key=lambda it: (it.language, it.prompt_id)) == sorted(
        items, key=lambda it: (it.language, it.prompt_id))
    assert shard_items(list(reversed(items)), 2, 4) == shards[2]
    with pytest.raises(ValueError, match="shard 4 of 4 does not exist"):
        shard_items(items, 4, 4)


def test_backend_choice() -> None:
    import importlib.util

    import torch

    expected = "vllm" if importlib.util.find_spec("vllm") and torch.cuda.is_available() else "transformers"
    assert resolve_backend("auto") == expected
    assert resolve_backend("transformers") == "transformers"
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(RuntimeError, match="vllm is not installed"):
            resolve_backend("vllm")


def test_base_plus_adapter_checkpoint(tiny: Path, tmp_path: Path) -> None:
    from tests.generation_fixtures import build_lora_checkpoint
    from xdetox.generation.hf import TransformersBackend

    tuned = build_lora_checkpoint(tiny, tmp_path / "tuned")
    sampling = Sampling(samples=3, temperature=0.9, top_p=0.8, max_new_tokens=6)
    request = Request("Hello there", 11)
    base_out = TransformersBackend(tiny, dtype="float32").generate([request], sampling)[0]
    tuned_backend = TransformersBackend(tuned, dtype="float32")
    tuned_out = tuned_backend.generate([request], sampling)[0]
    assert [x.text for x in tuned_out] != [x.text for x in base_out]
    assert [x.text for x in tuned_backend.generate([request], sampling)[0]] == [x.text for x in tuned_out]
    assert digest_from_folder(tuned) != digest_from_folder(tiny)


def _eos_loving_copy(tiny: Path, dest: Path) -> Path:
    """The tiny model edited so that EOS is by far its likeliest next token after any input: the
    residual stream's dimension 0 is a constant +100 (embeddings, and nothing adds to it), the final
    norm keeps only that dimension, and only EOS's output row reads it."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(tiny, dest)
    model = AutoModelForCausalLM.from_pretrained(dest)
    eos = model.config.eos_token_id
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 100.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[eos, 0] = 10.0  # EOS logit ~ 10 * sqrt(64) = 80; every other logit 0
    model.save_pretrained(dest)
    return dest


def test_min_new_tokens_holds_back_eos(tiny: Path, tmp_path: Path) -> None:
    """Without a minimum the edited model stops at once (1 token: EOS, empty text); with
    min_new_tokens = max_new_tokens every continuation has exactly that many tokens and no EOS."""
    from xdetox.generation.hf import TransformersBackend

    backend = TransformersBackend(_eos_loving_copy(tiny, tmp_path / "eos"), dtype="float32")
    requests = [Request("Hello there", 11), Request("Guten Tag", 12)]
    free = backend.generate(requests, Sampling(samples=3, temperature=0.9, top_p=0.8, max_new_tokens=5))
    assert [[c.num_tokens for c in row] for row in free] == [[1, 1, 1], [1, 1, 1]]
    assert {c.text for row in free for c in row} == {""}
    held = backend.generate(requests, Sampling(samples=3, temperature=0.9, top_p=0.8, max_new_tokens=5,
                                               min_new_tokens=5))
    assert [[c.num_tokens for c in row] for row in held] == [[5, 5, 5], [5, 5, 5]]
    assert all(c.text for row in held for c in row)

