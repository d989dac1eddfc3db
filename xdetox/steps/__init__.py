"""Steps: pure functions of their manifests. Each kind lives in its own module."""
