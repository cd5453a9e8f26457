"""transformer-spec: the notes on the Transformer as clauses, a reference, and properties.

Run-time shape checking of the reference is off by default (it costs ~40 us a call and does
not work under torch.compile). Set TRANSFORMER_SPEC_TYPECHECK=1 before the first import to
check every jaxtyping annotation in `transformer_spec.reference` with beartype.
"""

import os

from ._version import __version__ as __version__

if os.environ.get("TRANSFORMER_SPEC_TYPECHECK", "0") not in ("", "0"):
    try:
        import beartype  # noqa: F401
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "TRANSFORMER_SPEC_TYPECHECK=1 needs beartype: pip install 'transformer-spec[typecheck]'"
        ) from err
    from jaxtyping import install_import_hook

    # Installed before any reference module is imported, and left installed on purpose.
    install_import_hook("transformer_spec.reference", "beartype.beartype")
