"""The one interface both generation backends implement."""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    """How to sample: the same settings for every prompt of a step."""

    samples: int
    temperature: float
    top_p: float
    max_new_tokens: int
    top_k: int | None = None  # None: no top-k
    min_new_tokens: int | None = None
    num_beams: int = 1
    no_repeat_ngram_size: int | None = None
    repetition_penalty: float | None = None
    do_sample: bool = True  # false: greedy (num_beams 1) or plain beam search

    def extras(self) -> dict[str, object]:
        """The settings beyond samples / temperature / top-p / new tokens that differ from plain sampling,
        under transformers' generate() names (what a generation row's settings add)."""
        out: dict[str, object] = {}
        if self.top_k is not None:
            out["top_k"] = self.top_k
        if self.min_new_tokens is not None:
            out["min_new_tokens"] = self.min_new_tokens
        if self.num_beams != 1:
            out["num_beams"] = self.num_beams
        if self.no_repeat_ngram_size is not None:
            out["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.repetition_penalty is not None:
            out["repetition_penalty"] = self.repetition_penalty
        if not self.do_sample:
            out["do_sample"] = False
        return out


@dataclass(frozen=True)
class Request:
    """One prompt to continue: ``text`` is what the model sees (after the template).
    ``add_special_tokens`` is false when a chat template already put in BOS and friends."""

    text: str
    seed: int
    add_special_tokens: bool = True


@dataclass(frozen=True)
class Continuation:
    """One sampled continuation: the generated text only (never the prompt) and its token count
    (including an end-of-sequence token when generation stopped on one)."""

    text: str
    num_tokens: int


class Backend(abc.ABC):
    name: str

    @abc.abstractmethod
    def generate(self, requests: list[Request], sampling: Sampling) -> list[list[Continuation]]:
        """``sampling.samples`` continuations per request, in request order. A request's
        continuations depend only on its text, its seed and the model (not on the batch)."""

    def apply_chat_template(self, text: str) -> str:
        """The prompt wrapped in the model's chat template as one user turn."""
        tok = getattr(self, "tokenizer", None)
        if tok is None or not getattr(tok, "chat_template", None):
            raise ValueError("generation.chat_template is true but the model's tokenizer has no chat template")
        return str(tok.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                           add_generation_prompt=True))

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release the model (GPU memory, worker processes)."""
