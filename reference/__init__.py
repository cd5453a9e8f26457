"""The shape-typed reference Transformer. The `math` attention path is the ground truth.

Notation used in shapes: b batch, h heads, q/k query/key length, s source length,
t target length, d_model model width, d_k = d_model / h head width, vocab vocabulary size.
"""

from .alibi import alibi_bias as alibi_bias
from .alibi import alibi_slopes as alibi_slopes
from .attention import FULLY_MASKED_ROW_POLICY as FULLY_MASKED_ROW_POLICY
from .attention import attention_scores as attention_scores
from .attention import fused_attention as fused_attention
from .attention import scaled_dot_product_attention as scaled_dot_product_attention
from .config import DTYPES as DTYPES
from .config import PRESETS as PRESETS
from .config import SpecialTokens as SpecialTokens
from .config import TransformerConfig as TransformerConfig
from .config import base_config as base_config
from .config import gpt2_small_config as gpt2_small_config
from .config import llama_tiny_config as llama_tiny_config
from .config import mistral_tiny_config as mistral_tiny_config
from .config import parse_device as parse_device
from .config import parse_dtype as parse_dtype
from .embedding import TokenEmbedding as TokenEmbedding
from .embedding import one_hot_embed as one_hot_embed
from .feedforward import FeedForward as FeedForward
from .feedforward import GatedFeedForward as GatedFeedForward
from .generation import generate as generate
from .generation import incremental_logits as incremental_logits
from .generation import teacher_forced_loss as teacher_forced_loss
from .layers import Decoder as Decoder
from .layers import DecoderLayer as DecoderLayer
from .layers import Encoder as Encoder
from .layers import EncoderLayer as EncoderLayer
from .masks import causal_mask as causal_mask
from .masks import combine_masks as combine_masks
from .masks import keep_tokens as keep_tokens
from .masks import padding_mask as padding_mask
from .masks import sliding_window_mask as sliding_window_mask
from .model import AnyModel as AnyModel
from .model import DecoderOnlyModel as DecoderOnlyModel
from .model import EncoderDecoderModel as EncoderDecoderModel
from .model import EncoderOnlyModel as EncoderOnlyModel
from .model import KVCache as KVCache
from .model import UnEmbedding as UnEmbedding
from .model import build_model as build_model
from .model import count_parameters as count_parameters
from .model import probabilities as probabilities
from .multihead import LayerCache as LayerCache
from .multihead import MultiHeadAttention as MultiHeadAttention
from .multihead import Rotary as Rotary
from .norm import LayerNorm as LayerNorm
from .norm import Residual as Residual
from .norm import RMSNorm as RMSNorm
from .positional import PositionalEncoding as PositionalEncoding
from .positional import sinusoidal_concat as sinusoidal_concat
from .positional import sinusoidal_interleaved as sinusoidal_interleaved
from .rotary import apply_rotary as apply_rotary
from .rotary import rotary_angles as rotary_angles
from .vocabulary import Vocabulary as Vocabulary
