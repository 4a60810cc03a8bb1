"""Tests of the compiled kernels, driven through their Python entry points."""
