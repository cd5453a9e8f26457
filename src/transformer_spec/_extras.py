"""How to install the optional extras, said the same way by the CLI and the adapters that
need them (no imports: every layer may read it)."""

HF_EXTRA_HINT = "pip install 'transformer-spec[hf]' (or: pip install transformers)"
