"""Text generation: backends (transformers, vLLM), chunked resumable output, seeds, sharding."""
