"""Executors: run a plan locally, or render and submit it to Argo. Neither knows what a step computes."""
