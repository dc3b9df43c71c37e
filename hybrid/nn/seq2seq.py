"""Attention encoder-decoder (Luong et al., 2015), and the same model without attention.

The encoder is a `SequenceEncoder` (word embeddings, optional characters and one extra
feature such as a POS tag, a stacked BiLSTM) giving memory states ``(B, S, D)`` with
``D = 2 * hidden``. The decoder is a stacked LSTM of ``D`` units over target embeddings, started
from a projection of the encoder's summary. At each target step its top state ``h_t`` queries
the memory:

- ``dot``: ``score(h_t, m_s) = h_t . m_s``;
- ``general``: ``h_t . W m_s``;
- ``additive`` (Bahdanau): ``v . tanh(W_q h_t + W_m m_s)``;

the softmax over the source positions gives the attention weights ``a_t``, the context is
``c_t = sum_s a_ts m_s``, and the output distribution is ``softmax(W_o tanh(W_c [c_t; h_t]))``.
With ``attention="none"`` the decoder sees the source only through its start state and reads
out ``softmax(W_o h_t)`` (the comparison model of Vinyals et al., 2015). The decoder does not
feed ``c_t`` back into its input, so teacher-forced training runs the LSTM over the whole
target at once.

With a ``pointer_token``, the target is a transduction that consumes the source from left to
right, one position per ``pointer_token`` (a linearized tree's ``XX``, a transition system's
shift). The decoder then also reads, at every step, the memory state ``m_p`` of the next
unconsumed position ``p`` = the number of pointer tokens so far (zeros once all are consumed):
the deterministic attention of Ma et al. (2017), known from the target prefix, so it too
leaves teacher forcing one LSTM pass.

`Seq2Seq.start` and `Seq2Seq.step` give the step interface of
`hybrid.structured.beam.beam_search`: a state of tensors with the hypotheses first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .encoders import SequenceEncoder

__all__ = ["ATTENTIONS", "Attention", "Seq2Seq", "Seq2SeqConfig"]

ATTENTIONS = ("none", "dot", "general", "additive")


@dataclass(frozen=True)
class Seq2SeqConfig:
    """Sizes of a `Seq2Seq`.

    Attributes:
        num_source: Source vocabulary size (``pad_index`` and ``unk_index`` included).
        num_target: Target vocabulary size (``pad_index`` included).
        num_features: Vocabulary of one extra source feature per token (0: none).
        num_chars: Character vocabulary of the source words (0: no character encoder).
        word_dim: Source word embedding size.
        feature_dim: Feature embedding size.
        char_dim: Character embedding size.
        char_out: Size of the character encoder's word vectors.
        hidden: Encoder units per direction; the decoder and memory have ``2 * hidden``.
        encoder_layers: Stacked BiLSTM layers, 1 to 3.
        decoder_layers: Stacked decoder LSTM layers.
        target_dim: Target embedding size.
        attention: One of `ATTENTIONS`.
        attention_dim: Hidden size of ``additive`` attention.
        dropout: Dropout in encoder and decoder, in ``[0, 1)``.
        pointer_token: Target token that consumes one source position, or ``None``; see
            the module docstring.
        word_dropout: Training probability that a source word is replaced by ``unk_index``.
        pad_index: Padding entry of every vocabulary.
        unk_index: Unknown-word entry of the source vocabulary.
    """

    num_source: int
    num_target: int
    num_features: int = 0
    num_chars: int = 0
    word_dim: int = 128
    feature_dim: int = 32
    char_dim: int = 30
    char_out: int = 50
    hidden: int = 256
    encoder_layers: int = 2
    decoder_layers: int = 2
    target_dim: int = 128
    attention: str = "general"
    attention_dim: int = 128
    dropout: float = 0.3
    pointer_token: int | None = None
    word_dropout: float = 0.0
    pad_index: int = 0
    unk_index: int = 1


class Attention(nn.Module):
    """Attention of queries over memory states, scored by ``dot``, ``general`` or ``additive``.

    Args:
        kind: ``"dot"``, ``"general"`` or ``"additive"``.
        dim: Size ``D`` of queries and memory states.
        additive_dim: Hidden size of the ``additive`` score.
    """

    def __init__(self, kind: str, dim: int, additive_dim: int = 128):
        super().__init__()
        if kind not in ATTENTIONS[1:]:
            raise ValueError(f"kind must be one of {ATTENTIONS[1:]}, got {kind!r}")
        self.kind = kind
        if kind == "general":
            self.weight = nn.Linear(dim, dim, bias=False)
        if kind == "additive":
            self.query = nn.Linear(dim, additive_dim, bias=False)
            self.key = nn.Linear(dim, additive_dim)
            self.vector = nn.Linear(additive_dim, 1, bias=False)

    def forward(self, queries: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``queries (B, T, D)``, ``memory (B, S, D)``, ``mask (B, S)`` bool (True: a real
        position) -> ``context (B, T, D)`` and ``weights (B, T, S)`` (rows sum to 1, zero on
        padding)."""
        if self.kind == "dot":
            scores = queries @ memory.transpose(1, 2)
        elif self.kind == "general":
            scores = self.weight(queries) @ memory.transpose(1, 2)
        else:
            hidden = torch.tanh(self.query(queries)[:, :, None] + self.key(memory)[:, None])
            scores = self.vector(hidden)[..., 0]
        weights = scores.masked_fill(~mask[:, None, :], float("-inf")).softmax(-1)
        return weights @ memory, weights


class Seq2Seq(nn.Module):
    """Encoder-decoder with optional attention; see the module docstring.

    Example:
        >>> model = Seq2Seq(Seq2SeqConfig(num_source=50, num_target=20, hidden=16))
        >>> source, lengths = torch.randint(2, 50, (3, 7)), torch.tensor([7, 5, 2])
        >>> target_in = torch.randint(1, 20, (3, 9))
        >>> logits, weights = model(source, lengths, target_in)
        >>> logits.shape, weights.shape
        (torch.Size([3, 9, 20]), torch.Size([3, 9, 7]))
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {config.attention!r}")
        for name in ("num_target", "target_dim", "decoder_layers", "attention_dim"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        pointer = config.pointer_token
        if pointer is not None and (
            isinstance(pointer, bool)
            or not isinstance(pointer, int)
            or not 0 <= pointer < config.num_target
            or pointer == config.pad_index
        ):
            raise ValueError(
                f"pointer_token must be None or a target index in [0, {config.num_target}) "
                f"other than pad_index, got {pointer!r}"
            )
        self.config = config
        self.encoder = SequenceEncoder.from_config(config, config.num_source)
        dim = 2 * config.hidden
        self.bridge = nn.Linear(dim, config.decoder_layers * dim)
        self.embedding = nn.Embedding(config.num_target, config.target_dim, config.pad_index)
        self.decoder = nn.LSTM(
            config.target_dim + (dim if pointer is not None else 0),
            dim,
            config.decoder_layers,
            batch_first=True,
            dropout=config.dropout if config.decoder_layers > 1 else 0.0,
        )
        self.attention = None
        if config.attention != "none":
            self.attention = Attention(config.attention, dim, config.attention_dim)
            self.combine = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(dim, config.num_target)

    def start(
        self,
        source: Tensor,
        lengths: Tensor,
        features: Tensor | None = None,
        chars: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Encode the source: the decoder state before the first target token.

        Args:
            source: ``(B, S)`` source token indices, right padded.
            lengths: ``(B,)`` source lengths in ``[1, S]``.
            features: ``(B, S)`` feature indices (required when ``num_features > 0``).
            chars: ``(B, S, C)`` character indices (required when ``num_chars > 0``).

        Returns:
            ``{"h", "c": (B, layers, D), "memory": (B, S, D), "mask": (B, S) bool,
            "attention": (B, S), "pointer": (B,)}`` (the last step's attention weights, zero
            at the start; the source positions consumed by the target so far).
        """
        memory, summary = self.encoder(source, lengths, chars, features)
        batch, layers = source.shape[0], self.config.decoder_layers
        hidden = torch.tanh(self.bridge(summary)).view(batch, layers, -1)
        mask = torch.arange(source.shape[1], device=source.device)[None] < lengths[:, None]
        return {
            "h": hidden,
            "c": torch.zeros_like(hidden),
            "memory": memory,
            "mask": mask,
            "attention": memory.new_zeros(mask.shape),
            "pointer": torch.zeros_like(lengths),
        }

    def _readout(self, outputs: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Decoder outputs ``(B, T, D)`` -> target logits ``(B, T, V)`` and attention weights
        ``(B, T, S)`` (``None`` without attention)."""
        weights = None
        if self.attention is not None:
            context, weights = self.attention(outputs, state["memory"], state["mask"])
            outputs = torch.tanh(self.combine(torch.cat([context, outputs], dim=-1)))
        return self.output(self.dropout(outputs)), weights

    def _pointed(self, positions: Tensor, state: dict[str, Tensor]) -> Tensor:
        """The memory states at ``positions (B, T)``: ``(B, T, D)``, zeros at positions
        past the source's end."""
        memory, mask = state["memory"], state["mask"]
        inside = positions < mask.sum(1, keepdim=True)
        index = positions.clamp_max(memory.shape[1] - 1)
        rows = torch.arange(memory.shape[0], device=memory.device)[:, None]
        return memory[rows, index] * inside[..., None]

    def _decode(
        self, tokens: Tensor, state: dict[str, Tensor], positions: Tensor | None
    ) -> tuple[Tensor, tuple]:
        """Run the decoder LSTM over ``tokens (B, T)`` from ``state``; ``positions (B, T)``
        are the pointer at each step (``None`` without a pointer token)."""
        start = (state["h"].transpose(0, 1).contiguous(), state["c"].transpose(0, 1).contiguous())
        inputs = self.embedding(tokens)
        if positions is not None:
            inputs = torch.cat([inputs, self._pointed(positions, state)], dim=-1)
        outputs, (h, c) = self.decoder(self.dropout(inputs), start)
        return outputs, (h, c)

    def forward(
        self,
        source: Tensor,
        lengths: Tensor,
        target_in: Tensor,
        features: Tensor | None = None,
        chars: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: logits ``(B, T, V)`` of each next target token given the
        previous ones ``target_in (B, T)`` (starting with the start token, right padded), and
        the attention weights ``(B, T, S)`` (``None`` without attention)."""
        state = self.start(source, lengths, features, chars)
        positions = None
        if self.config.pointer_token is not None:
            positions = (target_in == self.config.pointer_token).cumsum(1)
        outputs, _ = self._decode(target_in, state, positions)
        return self._readout(outputs, state)

    def step(self, tokens: Tensor, state: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """One decoder step for ``N`` hypotheses: ``tokens (N,)`` -> log-probabilities
        ``(N, V)`` of the next token and the new state (with this step's attention weights
        under ``"attention"``, ``(N, S)``; zero without attention)."""
        pointer = state["pointer"]
        if self.config.pointer_token is not None:
            pointer = pointer + (tokens == self.config.pointer_token)
        positions = None if self.config.pointer_token is None else pointer[:, None]
        outputs, (h, c) = self._decode(tokens[:, None], state, positions)
        logits, weights = self._readout(outputs, state)
        new = {**state, "h": h.transpose(0, 1), "c": c.transpose(0, 1), "pointer": pointer}
        if weights is not None:
            new["attention"] = weights[:, 0]
        return logits[:, 0].log_softmax(-1), new
