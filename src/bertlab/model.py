"""The BERT encoder: embeddings, a stack of Transformer encoder layers, and the pooler.

Shapes: B = batch size, T = sequence length, H = hidden size, N = heads, D = H / N, V = vocabulary.
Parameter names follow Hugging Face's `modeling_bert.py` (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query`` ...), so real BERT checkpoints load by a plain mapping
(see :mod:`bertlab.checkpoint`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import PreTrainedBert
from .config import BertConfig
from .outputs import BertModelOutput


def activation(name: str):
    """The feed-forward non-linearity named in the config (BERT uses the exact, erf-based GELU)."""
    return {
        "gelu": F.gelu,
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "silu": F.silu,
        "swish": F.silu,
    }[name]


def check_inputs(
    config: BertConfig,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    token_type_ids: torch.Tensor | None,
) -> None:
    """Raise a ValueError that names the problem, instead of an index error deep inside torch."""
    if not isinstance(input_ids, torch.Tensor):
        raise ValueError(f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}.")
    if input_ids.dim() != 2:
        hint = " Add a batch dimension with input_ids.unsqueeze(0)." if input_ids.dim() == 1 else ""
        raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(input_ids.shape)}.{hint}")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}.")
    T = input_ids.shape[1]
    if T > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {T} is longer than max_position_embeddings={config.max_position_embeddings}: "
            "truncate the input or cut it into pieces (BERT has no position embedding beyond that)."
        )
    if T == 0:
        raise ValueError("input_ids has sequence length 0; every sequence needs at least one token ([CLS]).")
    for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if t is not None and tuple(t.shape) != tuple(input_ids.shape):
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but input_ids has shape {tuple(input_ids.shape)}; "
                "they must match (one entry per token)."
            )
    if torch.compiler.is_compiling():
        return  # value checks need a host sync; the eager run has already made them
    lo, hi = int(input_ids.min()), int(input_ids.max())
    if lo < 0 or hi >= config.vocab_size:
        raise ValueError(
            f"input_ids contains token id {lo if lo < 0 else hi}, outside the vocabulary [0, {config.vocab_size}). "
            "Was the text tokenized with a different vocabulary than this model's?"
        )
    if token_type_ids is not None:
        lo, hi = int(token_type_ids.min()), int(token_type_ids.max())
        if lo < 0 or hi >= config.type_vocab_size:
            raise ValueError(
                f"token_type_ids (segment ids) must lie in [0, {config.type_vocab_size}), found {lo}..{hi}."
            )


class BertEmbeddings(nn.Module):
    """token + position + segment embeddings, then LayerNorm and dropout: (B, T) ids -> (B, T, H).

    Chapter: book/bert_encoder.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        T = input_ids.shape[1]
        position_ids = torch.arange(T, device=input_ids.device)  # (T,), broadcast over the batch
        if token_type_ids is None:
            segment = self.token_type_embeddings.weight[0]  # every token in segment A
        else:
            segment = self.token_type_embeddings(token_type_ids)
        # summed in the order transformers uses, so that fp32 rounding matches it bit for bit
        x = self.word_embeddings(input_ids) + segment + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product attention; every token looks at every (non-padding) token.

    Chapter: book/bert_encoder.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, H) hidden states -> (B, T, H): q, k and v split into N heads of D = H / N features,
        softmax(q k^T / sqrt(D)) v per head (positions where `attn_mask`, (B, 1, 1, T), is False get no
        weight), the heads' outputs side by side again."""
        B, T, H = x.shape
        # (B, T, H) -> (B, N, T, D) for each of q, k, v
        q = self.query(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.key(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.value(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        # softmax(q k^T / sqrt(D) + mask) v, fused; attn_mask is (B, 1, 1, T), True = may attend
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout_p if self.training else 0.0
        )
        return y.transpose(1, 2).reshape(B, T, H)  # heads side by side again


class BertSelfOutput(nn.Module):
    """Project the attention result, dropout, then the residual connection and LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, y: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(y)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(x, attn_mask), x)


class BertIntermediate(nn.Module):
    """First half of the feed-forward block: H -> intermediate_size, then the activation."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(x))


class BertOutput(nn.Module):
    """Second half of the feed-forward block: back to H, dropout, residual, LayerNorm."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(h)) + residual)


class BertLayer(nn.Module):
    """One Transformer encoder layer (post-LayerNorm, as in the original BERT): (B, T, H) -> (B, T, H)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attention(x, attn_mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        states = [x] if output_hidden_states else None
        for layer in self.layer:
            x = layer(x, attn_mask)
            if states is not None:
                states.append(x)
        return x, tuple(states) if states is not None else None


class BertPooler(nn.Module):
    """The sentence vector: tanh(W h + b) of the first token, [CLS]. (B, T, H) -> (B, H).

    Chapter: book/nsp_sop.md
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))


def padding_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """(B, T) of 1 = token, 0 = padding  ->  (B, 1, 1, T) booleans for SDPA, or None if nothing is padded."""
    if attention_mask is None:
        return None
    keep = attention_mask.bool()
    if not torch.compiler.is_compiling() and bool(keep.all()):
        return None  # no padding: let SDPA pick its fastest (mask-free) kernel
    return keep[:, None, None, :]


class BertModel(PreTrainedBert):
    """The bare encoder: token ids in, one vector per token (and a pooled [CLS] vector) out.

    Chapter: book/bert_encoder.md
    """

    hf_architecture = "BertModel"
    base_prefix = ""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
    ) -> BertModelOutput:
        """input_ids, attention_mask (1 = token, 0 = padding), token_type_ids (segment A = 0, B = 1): all (B, T)."""
        check_inputs(self.config, input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        x, states = self.encoder(x, padding_mask(attention_mask), output_hidden_states)  # (B, T, H)
        pooled = self.pooler(x) if self.pooler is not None else None  # (B, H)
        return BertModelOutput(last_hidden_state=x, pooler_output=pooled, hidden_states=states)
