"""Compiled code only: numba kernels over plain numpy arrays.

Every kernel is ``nogil`` and cached on disk (see ``_jit.py``). Python callers own
allocation and validation; kernels only read and write arrays they are given.
"""
