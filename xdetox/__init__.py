"""xdetox: cross-lingual LLM detoxification experiments, end to end."""

__version__ = "0.1.0"
