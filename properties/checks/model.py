"""Whole models: causal masking, padding, permutation, caching, teacher forcing (spec ARCH-*,
ENC-*, DEC-*, GEN-*, TRAIN-*, UNEMB-*)."""
