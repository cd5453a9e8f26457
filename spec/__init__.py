"""The notes on the Transformer architecture as numbered, machine-readable clauses."""

from ._clauses import KINDS as KINDS
from ._clauses import Clause as Clause
from ._clauses import Kind as Kind
from ._clauses import Section as Section
from ._clauses import Source as Source
from ._clauses import Spec as Spec
from ._clauses import SpecError as SpecError
from ._clauses import build_spec as build_spec
from ._clauses import load_spec as load_spec
