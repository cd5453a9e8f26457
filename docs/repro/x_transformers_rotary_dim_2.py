"""x-transformers 2.31.10: a Decoder with rotary_pos_emb=True and heads of width 4 cannot be
built: the rotary dimension defaults to dim_head // 2 = 2, and RotaryEmbedding(2) computes
base_rescale_factor ** (dim / (dim - 2)) even when base_rescale_factor is 1.

    python docs/repro/x_transformers_rotary_dim_2.py
"""

from x_transformers import Decoder  # type: ignore[import-untyped]

for heads in (2, 4):
    try:
        Decoder(dim=16, depth=1, heads=heads, attn_dim_head=16 // heads, rotary_pos_emb=True)
        print(f"dim_head={16 // heads}: built")
    except ZeroDivisionError as err:
        print(f"dim_head={16 // heads}: ZeroDivisionError: {err}")
