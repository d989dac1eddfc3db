"""Benchmarks: throughput and memory of training, generation, scoring and metrics (not tests)."""
