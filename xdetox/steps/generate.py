"""The generate step: sample continuations for shard i of N of a prompt set.

params: ``model`` (id, source, revision, dtype, arm, ...), ``prompts`` (a PromptSet dump) and
``generation`` (a GenerationSpec dump whose seed the planner resolved). The shard owns every
N-th (language, prompt) item (see xdetox.generation.sharding); its rows go, a chunk of
``generation.chunk_prompts`` prompts at a time, to the step's partial state (xdetox.store.partial:
``steps/<key>/partial/chunk-NNNNN.jsonl`` and its progress in prompts), so a preempted shard
resumes from its last committed chunk. The chunks are then concatenated into
``<output_prefix>/shard-0000i-of-0000N.jsonl`` and, once that is written, deleted. Rows are
streamed to disk: memory holds one chunk, whatever the shard's size.
"""

from __future__ import annotations

import time
from typing import Any

from xdetox.generation.backend import Backend, Request, Sampling
from xdetox.generation.chunks import chunk_is_valid, expected_keys
from xdetox.generation.seeds import prompt_seed
from xdetox.generation.sharding import chunked, shard_items
from xdetox.manifest import Shard
from xdetox.prompts import PromptItem, load_prompt_set, render_prompt
from xdetox.records import GenerationRow, dumps_row
from xdetox.spec.models import GenerationSpec, PromptSet
from xdetox.steps.context import StepContext
from xdetox.store.partial import PartialState


def run(ctx: StepContext) -> dict[str, Any]:
    params = ctx.params
    model_params: dict[str, Any] = params["model"]
    prompt_set = PromptSet.model_validate(params["prompts"])
    gen = GenerationSpec.model_validate(params["generation"])
    if gen.seed is None:
        raise ValueError("generation.seed must be resolved by the planner before the generate step runs")
    shard = ctx.manifest.shard or Shard(index=0, count=1)
    sampling = Sampling(gen.samples, gen.temperature, gen.top_p, gen.max_new_tokens, top_k=gen.top_k,
                        min_new_tokens=gen.min_new_tokens, num_beams=gen.beams,
                        no_repeat_ngram_size=gen.no_repeat_ngram_size, repetition_penalty=gen.repetition_penalty,
                        do_sample=gen.sampled)

    items = shard_items(load_prompt_set(prompt_set), shard.index, shard.count)
    chunks = chunked(items, gen.chunk_prompts) if items else []
    ctx.log(f"generate {shard.name()}: {len(items)} prompts x {gen.samples} samples in {len(chunks)} chunks")

    partial = ctx.partial("prompts", total=len(items))
    model = _ModelHandle(ctx, model_params, gen, sampling)
    settings = {"temperature": gen.temperature, "top_p": gen.top_p, "max_new_tokens": gen.max_new_tokens,
                "samples": gen.samples, **sampling.extras()}
    t0 = time.perf_counter()
    reused = written = tokens = rows = prompts_done = 0
    for index, chunk in enumerate(chunks):
        prompts_done += len(chunk)
        expected = expected_keys(((it.prompt_id, it.language) for it in chunk), gen.samples)
        ok, why = chunk_is_valid(partial, index, expected, ctx.scratch)
        if ok:
            reused += 1
            continue
        if why != "missing":
            ctx.log(f"chunk {index}: regenerating ({why})")
        n_rows, n_tokens = _write_chunk(ctx, partial, index, prompts_done, chunk, model, sampling, settings,
                                        prompt_set, gen, model_params)
        rows += n_rows
        tokens += n_tokens
        written += 1
    seconds = time.perf_counter() - t0 - model.load_seconds
    model.close()

    out = ctx.scratch / f"{shard.name()}.jsonl"
    total_rows = partial.concatenate(len(chunks), out, ctx.scratch)
    if total_rows != len(items) * gen.samples:
        raise RuntimeError(f"{shard.name()}: {total_rows} rows, expected {len(items) * gen.samples}")
    ctx.put_file(out.name, out)
    # Only now, with the shard file in place, are the chunks redundant. The commit record comes
    # after run() returns; a crash before it regenerates (or reuses) identical chunks.
    partial.clear()
    return {
        "shard": shard.name(),
        "prompts": len(items),
        "rows": total_rows,
        "chunks": len(chunks),
        "chunks_reused": reused,
        "chunks_generated": written,
        "generated_rows": rows,
        "generated_tokens": tokens,
        "generate_seconds": round(seconds, 3),
        "model_load_seconds": round(model.load_seconds, 3),
        "continuations_per_s": round(rows / seconds, 2) if rows and seconds > 0 else None,
        "tokens_per_s": round(tokens / seconds, 2) if tokens and seconds > 0 else None,
        "backend": model.backend_name,
        "model_digest": model.digest,
        "languages": sorted({it.language for it in items}),
    }


class _ModelHandle:
    """Loads the backend on first use: a shard whose chunks are all committed never loads the model."""

    def __init__(self, ctx: StepContext, model_params: dict[str, Any], gen: GenerationSpec,
                 sampling: Sampling) -> None:
        from xdetox.generation.select import resolve_backend

        self.ctx, self.params, self.gen, self.sampling = ctx, model_params, gen, sampling
        self.backend_name = resolve_backend(gen.backend)
        self._backend: Backend | None = None
        self._folder: str | None = None
        self._digest: str | None = None
        self.load_seconds = 0.0

    @property
    def folder(self) -> str:
        if self._folder is None:
            if self.ctx.has_input("model"):
                self._folder = str(self.ctx.input_dir("model"))
            else:
                from xdetox.models.resolve import resolve_model_source

                self._folder = resolve_model_source(self.params["source"], self.params.get("revision"))
        return self._folder

    @property
    def digest(self) -> str:
        if self._digest is None:
            from xdetox.generation.digest import digest_for_source, digest_from_record

            if self.ctx.has_input("model"):
                self._digest = digest_from_record(self.ctx.input_records("model")[0])
            else:
                self._digest = digest_for_source(self.params["source"], self.params.get("revision"), self.folder)
        return self._digest

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            from xdetox.generation.select import acquire_backend, backend_for_model

            served, why = backend_for_model(self.backend_name, self.folder, self.sampling)
            if served != self.backend_name:
                self.ctx.log(f"{self.params.get('id')}: {why}: generating with {served}")
                self.backend_name = served
            self.ctx.log(f"loading {self.params.get('id')} from {self.folder} with {self.backend_name}")
            t0 = time.perf_counter()
            self._backend = acquire_backend(self.backend_name, self.folder, dtype=self.params.get("dtype", "auto"))
            _ = self.digest  # hashing the weights is part of loading, not of generating
            self.load_seconds = time.perf_counter() - t0
        return self._backend

    def close(self) -> None:
        if self._backend is not None:
            from xdetox.generation.select import release_backend

            release_backend(self._backend)
            self._backend = None


def _write_chunk(
    ctx: StepContext,
    partial: PartialState,
    index: int,
    prompts_done: int,
    chunk: list[PromptItem],
    model: _ModelHandle,
    sampling: Sampling,
    settings: dict[str, Any],
    prompt_set: PromptSet,
    gen: GenerationSpec,
    model_params: dict[str, Any],
) -> tuple[int, int]:
    backend = model.backend
    digest = model.digest
    path = ctx.scratch / f"chunk-{index:05d}.jsonl"
    rows = tokens = 0
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, len(chunk), gen.batch_size):
            batch = chunk[start:start + gen.batch_size]
            texts = [render_prompt(prompt_set.template, it.prompt) for it in batch]
            if gen.chat_template:
                texts = [backend.apply_chat_template(t) for t in texts]
            seeds = [prompt_seed(gen.seed or 0, it.language, it.prompt_id) for it in batch]
            requests = [Request(t, s, add_special_tokens=not gen.chat_template) for t, s in zip(texts, seeds, strict=True)]
            outputs = backend.generate(requests, sampling)
            if len(outputs) != len(batch) or any(len(c) != sampling.samples for c in outputs):
                raise RuntimeError(f"{backend.name} returned {[len(c) for c in outputs]} samples for "
                                   f"{len(batch)} prompts, expected {sampling.samples} each")
            for item, text, seed, conts in zip(batch, texts, seeds, outputs, strict=True):
                for sample_index, cont in enumerate(conts):
                    row = GenerationRow(
                        prompt_id=item.prompt_id, language=item.language, prompt=item.prompt, prompt_text=text,
                        sample_index=sample_index, text=cont.text, seed=seed, model_id=str(model_params.get("id")),
                        model_digest=digest, arm=str(model_params.get("arm", "base")), backend=backend.name,
                        prompt_set=prompt_set.id, settings=settings, num_tokens=cont.num_tokens,
                    )
                    f.write(dumps_row(row))
                    rows += 1
                    tokens += cont.num_tokens
    partial.put_chunk(index, path, done=prompts_done)
    path.unlink()
    return rows, tokens


__all__ = ["run"]
