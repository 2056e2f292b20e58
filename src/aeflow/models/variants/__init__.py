"""One module per autoencoder variant; each registers itself with :func:`aeflow.models.registry.register`."""
