"""Autoencoder models. Import :mod:`aeflow.models.registry` for ``build_model``/``available``.

This package module stays import-light (no torch, no Lightning) so that params validation can check
variant names cheaply.
"""
