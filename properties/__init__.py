"""Executable properties of spec/ clauses.

The harness (adapters, strategies, properties, the checker) is built in the next stage;
until then this package only reserves the namespace `transformer_spec.properties`.
"""
