"""Analyses beside the metrics: paper 1's toxic neurons (neurons) and its published results (reference)."""
