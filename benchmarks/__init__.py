"""Benchmarks: scripts that print tables (python -m benchmarks.NAME --help); not tests."""
