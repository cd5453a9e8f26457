"""Property modules; importing this package registers every property."""

from . import attention as attention
from . import beyond as beyond
from . import beyond_model as beyond_model
from . import components as components
from . import generation as generation
from . import layers as layers
from . import masking as masking
from . import model as model
from . import multihead as multihead
from . import scaling as scaling
from . import training as training
from . import vocabulary as vocabulary
