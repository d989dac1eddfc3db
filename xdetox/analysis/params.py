"""Moved to xdetox.kinds.steps.analyze (the analyze kind plans with them; the planner must not import analysis)."""

from xdetox.kinds.steps.analyze import analyze_params, wants_analysis

__all__ = ["analyze_params", "wants_analysis"]
