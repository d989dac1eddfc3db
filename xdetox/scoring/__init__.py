"""Toxicity scorers (Perspective API, a local classifier, the embedded lexicon) behind one interface."""
