"""Multi-head attention and cross-attention, at the module level (spec MHA-*, XATTN-*)."""
