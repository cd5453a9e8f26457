"""Building blocks on their own: embedding, positional encoding, LayerNorm, feed-forward
network and un-embedding (spec EMB-*, PE-*, NORM-*, FFN-*, UNEMB-*)."""
