"""Training: data adapters, presets and the TRL/PEFT trainer wrapper used by the train step."""
