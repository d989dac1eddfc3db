"""The portable backend: transformers ``generate`` on CPU or GPU, several prompts per batch.

transformers' own sampling draws every row of a batch from one random stream, so a prompt's
text would change with its batch-mates. Here the sampling is done by a logits processor,
``RowSampler``: temperature, then top-p, then one draw per row from that row's own
``torch.Generator``, seeded from (prompt seed, sample index). It returns a one-hot score, and
``generate`` runs greedy, so it only appends the drawn token. A prompt's samples then depend only
on the prompt, its seed and the model, not on the batch or shard it landed in (left padding with
the attention mask keeps the forward pass of a row independent of its neighbours; the tests
check alone == batched == reordered). Batching many prompts is what makes single-sample runs
(paper 2) fast: measured 23x over one prompt per call on CPU.

The generators are CPU generators whatever the device, so the random stream is the same on
every machine; only the model's arithmetic differs between CPU and GPU.

Encoder-decoder models (paper 2's mT5) run here too, picked by the config's ``is_encoder_decoder``:
the prompt is the encoder's input and the decoder's output, after its start token, is the
continuation. vLLM does not serve T5-family models, so this is their only backend (see select.py).

Beyond that sampling, a model's generation settings may ask for what paper 2's scripts use: top-k
(RowSampler applies it, after temperature and before top-p, as transformers orders its warpers),
a minimum length, a no-repeat-n-gram rule and a repetition penalty (transformers' own processors,
which run before RowSampler), greedy decoding (``do_sample`` false: transformers' argmax), and beam search with or
without sampling (``num_beams`` > 1: its mT5 X-FT script's beam-sample). Beam-sample draws from
torch's global generator, so those run one (prompt, sample) at a time, the generator seeded from
(prompt seed, sample index) first: the same prompt-and-seed-only determinism, at batch size one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xdetox.generation.backend import Backend, Continuation, Request, Sampling

SAMPLE_BITS = 16  # row seed = prompt seed << 16 | sample index (samples are at most 1000)


def row_seed(prompt_seed: int, sample_index: int) -> int:
    return (prompt_seed << SAMPLE_BITS) | sample_index


class RowSampler:
    """A transformers LogitsProcessor that samples each row with its own generator."""

    def __init__(self, seeds: list[int], temperature: float, top_p: float, top_k: int | None = None) -> None:
        import torch

        self.torch = torch
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        torch = self.torch
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
        if self.top_k is not None and self.top_k < sorted_p.shape[-1]:
            # top-k before top-p, over the renormalized k (transformers' TopK then TopP warpers)
            sorted_p[:, self.top_k:] = 0.0
            sorted_p = sorted_p / sorted_p.sum(-1, keepdim=True)
        # Nucleus: keep the most probable tokens up to and including the one that crosses top_p.
        sorted_p = sorted_p.masked_fill(sorted_p.cumsum(-1) - sorted_p > self.top_p, 0.0)
        cum = sorted_p.double().cumsum(-1)
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in self.generators]).to(cum.device)
        pos = torch.searchsorted(cum, (u * cum[:, -1]).unsqueeze(-1)).clamp(max=cum.shape[-1] - 1)
        token = order.gather(-1, pos)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(-1, token, 0.0)


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, model_dir: str | Path, dtype: str = "auto", device: str | None = None) -> None:
        from xdetox.models.load import load_lm

        model, tokenizer = load_lm(model_dir, dtype=dtype, device=device)
        self._setup(model, tokenizer)

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any = None) -> TransformersBackend:
        """Wrap a model already in memory (benchmarks); without a tokenizer only sample_ids works."""
        self = cls.__new__(cls)
        self._setup(model, tokenizer)
        return self

    def _setup(self, model: Any, tokenizer: Any) -> None:
        import torch

        self.model, self.tokenizer = model, tokenizer
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        if tokenizer is not None and not self.seq2seq:
            tokenizer.padding_side = "left"  # a decoder continues the prompt: pad before it
        self.device = next(self.model.parameters()).device
        eos = self.model.generation_config.eos_token_id
        if eos is None and tokenizer is not None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids: set[int] = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        pad = tokenizer.pad_token_id if tokenizer is not None else None
        self.pad_id = pad if pad is not None else next(iter(self.eos_ids), 0)
        self._torch = torch

    def generate(self, requests: list[Request], sampling: Sampling) -> list[list[Continuation]]:
        if not requests:
            return []
        if len({r.add_special_tokens for r in requests}) > 1:  # never mixed by the step; keep it correct anyway
            return [self.generate([r], sampling)[0] for r in requests]
        n = sampling.samples
        if sampling.num_beams > 1:
            return [[self._continuation(ids) for ids in self._beam_ids(r, sampling)] for r in requests]
        enc = self.tokenizer([r.text for r in requests], return_tensors="pt", padding=True,
                             add_special_tokens=requests[0].add_special_tokens)
        new = self.sample_ids(enc["input_ids"], enc["attention_mask"], [r.seed for r in requests], sampling)
        conts = [self._continuation(ids) for ids in new]
        return [conts[i * n:(i + 1) * n] for i in range(len(requests))]

    def sample_ids(self, input_ids: Any, attention: Any, seeds: list[int], sampling: Sampling,
                   min_new_tokens: int | None = None) -> list[list[int]]:
        """New token ids, ``samples`` rows per prompt (prompt-major), for padded prompts (left-padded
        for a decoder-only model; an encoder-decoder reads them under the mask either way)."""
        from transformers import LogitsProcessorList

        torch = self._torch
        n = sampling.samples
        input_ids = input_ids.repeat_interleave(n, dim=0).to(self.device)
        attention = attention.repeat_interleave(n, dim=0).to(self.device)
        extra = self._constraints(sampling, min_new_tokens)
        if sampling.do_sample:
            sampler = RowSampler([row_seed(seed, s) for seed in seeds for s in range(n)], sampling.temperature,
                                 sampling.top_p, sampling.top_k)
            extra["logits_processor"] = LogitsProcessorList([sampler])
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                do_sample=False,  # RowSampler has drawn the token (greedy just takes it), or greedy is asked for
                max_new_tokens=sampling.max_new_tokens,
                pad_token_id=self.pad_id,
                **extra,
            )
        # a decoder-only model returns prompt + new tokens; an encoder-decoder returns the decoder's
        # sequence, which starts with its decoder_start_token_id
        return out[:, 1 if self.seq2seq else input_ids.shape[1]:].tolist()

    @staticmethod
    def _constraints(sampling: Sampling, min_new_tokens: int | None = None) -> dict[str, Any]:
        """transformers' own length and no-repeat processors (they run before any logits_processor given)."""
        out: dict[str, Any] = {}
        if min_new_tokens or sampling.min_new_tokens:
            out["min_new_tokens"] = min_new_tokens or sampling.min_new_tokens
        if sampling.no_repeat_ngram_size:
            out["no_repeat_ngram_size"] = sampling.no_repeat_ngram_size
        if sampling.repetition_penalty is not None:
            out["repetition_penalty"] = sampling.repetition_penalty
        return out

    def _beam_ids(self, request: Request, sampling: Sampling) -> list[list[int]]:
        """``samples`` beam searches of one prompt (transformers' beam-sample when sampling), the best beam
        of each; the global generator seeded per (prompt seed, sample) so a sample depends on nothing else."""
        torch = self._torch
        enc = self.tokenizer([request.text], return_tensors="pt", add_special_tokens=request.add_special_tokens)
        input_ids, attention = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
        warp: dict[str, Any] = {"do_sample": sampling.do_sample}
        if sampling.do_sample:
            # top_k 0 switches off transformers' default of 50 when the settings give none
            warp |= {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k or 0}
        out = []
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        for s in range(sampling.samples):
            with torch.random.fork_rng(devices=cuda), torch.inference_mode():  # leaves the caller's generators be
                torch.manual_seed(row_seed(request.seed, s))
                seq = self.model.generate(input_ids=input_ids, attention_mask=attention, num_beams=sampling.num_beams,
                                          num_return_sequences=1, max_new_tokens=sampling.max_new_tokens,
                                          pad_token_id=self.pad_id, **warp, **self._constraints(sampling))
            out.append(seq[0, 1 if self.seq2seq else input_ids.shape[1]:].tolist())
        return out

    def _continuation(self, ids: list[int]) -> Continuation:
        n = len(ids)
        for i, t in enumerate(ids):
            if t in self.eos_ids:
                n = i + 1  # count the EOS token, as vLLM does; what follows is padding
                break
        return Continuation(self.tokenizer.decode(ids[:n], skip_special_tokens=True), n)

    def close(self) -> None:
        del self.model
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
