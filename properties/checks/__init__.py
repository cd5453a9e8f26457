"""Property modules; importing this package registers every property."""

from . import attention as attention
from . import masking as masking
from . import scaling as scaling
