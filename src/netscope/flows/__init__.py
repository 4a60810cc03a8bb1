"""Bidirectional flow tracking: compiled table kernels plus their Python face."""
