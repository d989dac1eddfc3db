"""Experiment spec: models, loading and matrix expansion."""

from xdetox.spec.load import SpecError, SpecProblem, expand_matrix, load_spec, load_spec_text
from xdetox.spec.models import ExperimentSpec

__all__ = ["ExperimentSpec", "SpecError", "SpecProblem", "expand_matrix", "load_spec", "load_spec_text"]
