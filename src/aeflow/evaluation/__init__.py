"""Metrics and baselines: pure functions over arrays."""
