"""Tests of the readable per-packet decoder (netscope.decode) and display."""
