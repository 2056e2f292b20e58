"""Data sources, splits and Lightning datamodules. Functions here return arrays; stages write files."""
