"""aeflow: autoencoders as reproducible DVC pipelines tracked in MLflow."""

__version__ = "0.1.0"
