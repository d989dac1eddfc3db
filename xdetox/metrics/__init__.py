"""Metrics: pure functions over per-prompt statistics (numpy/scipy), and their streaming aggregation."""
