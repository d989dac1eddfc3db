"""Per-prompt seeds: a prompt's samples depend only on the run seed and the prompt itself.

One seed shared by a batch correlates samples across prompts, and ties a prompt's samples to
the batch it landed in; a seed per (language, prompt id) makes them independent of sharding,
chunking and batching.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31  # fits every backend's seed argument (torch, vLLM, numpy)


def prompt_seed(run_seed: int, language: str, prompt_id: str) -> int:
    """A 31-bit seed from sha256 over the run seed, language and prompt id."""
    h = hashlib.sha256(f"xdetox-prompt-seed/v1\x00{run_seed}\x00{language}\x00{prompt_id}".encode())
    return int.from_bytes(h.digest()[:8], "big") & ((1 << SEED_BITS) - 1)
