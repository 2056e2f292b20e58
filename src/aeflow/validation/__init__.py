"""Data validation with great-expectations.

:mod:`aeflow.validation.core` is the only module that imports great_expectations (lazily: ~3 s). Suites
for each artefact are plain lists of :class:`~aeflow.validation.core.Check` so they stay cheap to build and
easy to read.
"""
