"""Property modules; importing this package registers every property in the harness's
registry. `load_all`, `select` and `checked_by` live here, not in the harness: the checks
depend on the harness, never the other way round."""

import fnmatch

from transformer_spec.properties.harness.registry import REGISTRY, Property

# Importing a module registers its properties: this list, not sorted, is the registration
# order, and a property module another imports from (components_positionwise for beyond,
# model and model_dependence for beyond_model) comes before it.
# isort: off
from . import attention as attention
from . import components as components
from . import components_positionwise as components_positionwise
from . import beyond as beyond
from . import multihead as multihead
from . import multihead_masking as multihead_masking
from . import model as model
from . import model_dependence as model_dependence
from . import beyond_model as beyond_model
from . import generation as generation
from . import layers as layers
from . import masking as masking
from . import scaling as scaling
from . import training as training
from . import vocabulary as vocabulary
# isort: on


def load_all() -> dict[str, Property]:
    """Every property, in registration order (importing this package registered them)."""
    return REGISTRY


def select(patterns: list[str] | None) -> list[Property]:
    props = list(REGISTRY.values())
    if not patterns:
        return props
    return [p for p in props if any(fnmatch.fnmatchcase(p.id, pat) for pat in patterns)]


def checked_by() -> dict[str, tuple[str, ...]]:
    """Clause id -> ids of the properties that cite it."""
    links: dict[str, list[str]] = {}
    for p in REGISTRY.values():
        for clause in p.clauses:
            links.setdefault(clause, []).append(p.id)
    return {clause: tuple(ids) for clause, ids in links.items()}
