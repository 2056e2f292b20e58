"""Figures (pure: arrays in, PNG bytes out) and the offline HTML report."""
