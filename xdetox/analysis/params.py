"""Moved to xdetox.plan.analysis_params (the planner computes them and must not import analysis)."""

from xdetox.plan.analysis_params import analyze_params, wants_analysis

__all__ = ["analyze_params", "wants_analysis"]
