"""Models: the builtin tiny model, resolving user sources, loading checkpoints."""
