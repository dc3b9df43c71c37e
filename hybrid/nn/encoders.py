"""Token encoders: the "deep" half of a tagger.

`SequenceEncoder` turns word indices (plus, optionally, the characters of each word and an
extra categorical feature such as a POS tag) into one state per token, from which a head
projects emission scores for a softmax, CRF or structured-SVM layer. `CharEncoder` is its
word-from-characters part, usable on its own.

Index tensors are right-padded; ``pad_index`` is the padding entry of every vocabulary (words,
characters, features): its embedding is zero and receives no gradient.
"""

from __future__ import annotations

import os
import re

import torch
from torch import Tensor, nn

from ..files import iter_lines
from ..structured._inputs import capturing, exporting, resolve_lengths

RNN_KINDS = ("lstm", "gru", "rnn")
CHAR_ENCODER_KINDS = ("cnn", "lstm")
MAX_LAYERS = 3


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_pad_index(pad_index: object, vocabularies: dict[str, int]) -> None:
    for name, size in vocabularies.items():
        if not isinstance(pad_index, int) or not 0 <= pad_index < size:
            raise ValueError(f"pad_index must lie in [0, {name}) = [0, {size}), got {pad_index!r}")


def _check_indices(name: str, x: object, dims: str, size: int, device: torch.device) -> Tensor:
    """Validate an index tensor and return it as int64.

    Args:
        name: Argument name used in error messages.
        x: The tensor to check.
        dims: Expected dimensions, e.g. ``"(B, T)"``; the first two must be non-empty.
        size: Vocabulary size; every entry must lie in ``[0, size)``.
        device: Device the tensor must live on.
    """
    rank = dims.count(",") + 1
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor {dims}, got {type(x).__name__}")
    if x.dim() != rank:
        raise ValueError(f"{name} must have shape {dims}, got {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have B >= 1 and T >= 1, got shape {tuple(x.shape)}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer tensor, got {x.dtype}")
    if x.device != device:
        raise ValueError(f"{name} is on {x.device} but must be on {device}")
    if not capturing() and x.numel() and (int(x.min()) < 0 or int(x.max()) >= size):
        raise ValueError(
            f"{name} must lie in [0, {size}), got min {int(x.min())} and max {int(x.max())}"
        )
    return x.long()


class _CharCNN(nn.Module):
    """Character embeddings -> convolution of width 3 -> max-pool over the word's characters."""

    def __init__(self, num_chars: int, char_dim: int, out_dim: int, pad_index: int):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_index)
        self.conv = nn.Conv1d(char_dim, out_dim, kernel_size=3, padding=1)

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """``(N, C)`` right-padded characters, ``(N,)`` lengths >= 1 -> ``(N, out_dim)``."""
        features = self.conv(self.embedding(chars).transpose(1, 2))
        steps = torch.arange(chars.shape[1], device=chars.device)
        padding = (steps[None, :] >= lengths[:, None])[:, None, :]
        return features.masked_fill(padding, float("-inf")).amax(dim=2)


class _CharBiLSTM(nn.Module):
    """Character embeddings -> BiLSTM -> final forward and backward states concatenated."""

    def __init__(self, num_chars: int, char_dim: int, out_dim: int, pad_index: int):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=pad_index)
        self.lstm = BiRNN(char_dim, out_dim // 2, 1, "lstm", 0.0)

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """``(N, C)`` right-padded characters, ``(N,)`` lengths -> ``(N, out_dim)`` (zero
        for a length of 0)."""
        return BiRNN.end_states(self.lstm(self.embedding(chars), lengths), lengths)


class CharEncoder(nn.Module):
    """The characters of each word -> one vector per word.

    ``"cnn"`` (Ma and Hovy, 2016): character embeddings, a 1-D convolution of width 3 (zero
    padded, so every character is a window centre) and a max-pool over the word's characters.
    ``"lstm"`` (Lample et al., 2016): a BiLSTM over the characters with ``out_dim // 2`` units
    per direction; the final forward and backward states are concatenated.

    Only non-empty words are encoded; a word with no characters (all ``pad_index``, such as the
    padding positions of a batch) gives a zero vector. The output of a word does not depend on
    how many padding characters follow it.

    Args:
        num_chars: Character vocabulary size, ``pad_index`` included.
        char_dim: Character embedding size.
        out_dim: Size of each word vector (even for ``"lstm"``).
        kind: ``"cnn"`` or ``"lstm"``.
        pad_index: Padding character.

    Example:
        >>> encoder = CharEncoder(num_chars=60, kind="lstm")
        >>> encoder(torch.randint(1, 60, (2, 7, 12))).shape
        torch.Size([2, 7, 50])
    """

    def __init__(
        self,
        num_chars: int,
        char_dim: int = 30,
        out_dim: int = 50,
        kind: str = "cnn",
        pad_index: int = 0,
    ):
        super().__init__()
        for name, value in (("num_chars", num_chars), ("char_dim", char_dim), ("out_dim", out_dim)):
            _check_positive(name, value)
        if kind not in CHAR_ENCODER_KINDS:
            raise ValueError(f"kind must be one of {CHAR_ENCODER_KINDS}, got {kind!r}")
        if kind == "lstm" and out_dim % 2:
            raise ValueError(f"out_dim must be even for kind='lstm', got {out_dim}")
        _check_pad_index(pad_index, {"num_chars": num_chars})
        self.num_chars = num_chars
        self.out_dim = out_dim
        self.kind = kind
        self.pad_index = pad_index
        network = _CharCNN if kind == "cnn" else _CharBiLSTM
        self.network = network(num_chars, char_dim, out_dim, pad_index)

    def forward(self, chars: Tensor) -> Tensor:
        """Encode the characters of every word.

        Args:
            chars: ``(B, T, C)`` integer character indices; each word's characters come first,
                then ``pad_index`` (right padding).

        Returns:
            ``(B, T, out_dim)`` word vectors; zero for words with no characters.
        """
        device = self.network.embedding.weight.device
        chars = _check_indices("chars", chars, "(B, T, C)", self.num_chars, device)
        batch, steps, width = chars.shape
        real = chars != self.pad_index
        lengths = real.sum(dim=2)
        words = chars.reshape(batch * steps, width)
        if capturing():  # every word, padding too, so that no shape depends on the data
            lengths = lengths.reshape(-1)
            out = self.network(words, lengths)
            out = torch.where((lengths > 0).unsqueeze(1), out, torch.zeros_like(out))
            return out.reshape(batch, steps, self.out_dim)
        if not torch.equal(torch.arange(width, device=device) < lengths[..., None], real):
            raise ValueError(
                "chars must be right-padded: pad_index may only follow a word's last character"
            )
        lengths = lengths.reshape(-1)
        nonempty = (lengths > 0).nonzero().squeeze(1)
        out = self.network.embedding.weight.new_zeros(batch * steps, self.out_dim)
        if nonempty.numel():
            out = out.index_copy(0, nonempty, self.network(words[nonempty], lengths[nonempty]))
        return out.reshape(batch, steps, self.out_dim)


class BiRNN(nn.Module):
    """Stacked bidirectional LSTM/GRU/Elman RNN over right-padded sequences, without packing.

    The left-to-right direction reads the padded batch as it is: padding comes after every
    real token, so it never reaches their states. The right-to-left direction reads each
    sequence reversed within its own length (padding still last) and its states are put back
    in order. The result equals `torch.nn.LSTM` (``bidirectional=True``, same weights) run on
    each sequence alone (tested), but costs one batched pass per direction and layer: on CPU,
    packed sequences pay for a full-size zero gradient per time step in the backward pass.

    Args:
        input_dim: Size of each input vector.
        hidden: Units per direction.
        layers: Number of stacked bidirectional layers.
        kind: ``"lstm"``, ``"gru"`` or ``"rnn"`` (Elman, tanh).
        dropout: Dropout between layers (training mode only).

    Parameters live in ``left_to_right[l]`` and ``right_to_left[l]``, one single-layer
    unidirectional module per direction and layer; a state dict saved from a
    ``torch.nn.LSTM(..., bidirectional=True)`` (keys ``weight_ih_l0``, ``weight_ih_l0_reverse``,
    ...) loads too.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int, kind: str, dropout: float):
        super().__init__()
        network = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
        sizes = [input_dim] + [2 * hidden] * (layers - 1)
        self.left_to_right = nn.ModuleList(network(n, hidden, batch_first=True) for n in sizes)
        self.right_to_left = nn.ModuleList(network(n, hidden, batch_first=True) for n in sizes)
        self.dropout = nn.Dropout(dropout)
        self._register_load_state_dict_pre_hook(_from_bidirectional_keys)

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """``(B, T, input_dim)`` right-padded inputs, ``(B,)`` lengths in ``[1, T]`` ->
        ``(B, T, 2 * hidden)`` states (left-to-right half first), zero past each length."""
        steps = inputs.shape[1]
        time = torch.arange(steps, device=inputs.device)[None]
        inside = time < lengths[:, None]
        # reversal within each length, an involution; positions past the length stay put
        order = torch.where(inside, lengths[:, None] - 1 - time, time)
        states = inputs
        for layer, (forward, backward) in enumerate(
            zip(self.left_to_right, self.right_to_left, strict=True)
        ):
            if layer > 0:
                states = self.dropout(states)
            ahead = _run(forward, states)
            reversed_states = states.gather(1, order[..., None].expand_as(states))
            behind = _run(backward, reversed_states)
            behind = behind.gather(1, order[..., None].expand_as(behind))
            states = torch.cat([ahead, behind], dim=2)
        return states * inside[..., None]

    @staticmethod
    def end_states(states: Tensor, lengths: Tensor) -> Tensor:
        """``(B, 2 * hidden)`` summary of ``forward``'s ``states``: the left-to-right state at
        each sequence's last position and the right-to-left state at its first."""
        hidden = states.shape[-1] // 2
        last = (lengths - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, hidden)
        return torch.cat([states[..., :hidden].gather(1, last)[:, 0], states[:, 0, hidden:]], dim=1)


def _run(network: nn.RNNBase, inputs: Tensor) -> Tensor:
    """The outputs of a single-layer, unidirectional, batch-first ``network`` over ``inputs``
    ``(B, T, D)``: the module itself, or under ``torch.export`` the same recurrence as a
    ``scan`` over time, which stays dynamic in ``T`` (the export of ``nn.LSTM``, ``nn.GRU``
    and ``nn.RNN`` unrolls them to the example's length)."""
    if not exporting():
        return network(inputs)[0]
    from torch._higher_order_ops.scan import scan

    recurrent, bias = network.weight_hh_l0.t(), network.bias_hh_l0
    projected = (inputs @ network.weight_ih_l0.t() + network.bias_ih_l0).transpose(0, 1)
    start = inputs.new_zeros(inputs.shape[0], network.hidden_size)

    def lstm(carry: tuple[Tensor, Tensor], x: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        h, c = carry
        i, f, g, o = (x + h @ recurrent + bias).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return (h, c), h.clone()

    def gru(h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        xr, xz, xn = x.chunk(3, dim=1)
        hr, hz, hn = (h @ recurrent + bias).chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        return h, h.clone()

    def elman(h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        h = x + h @ recurrent + bias
        h = torch.relu(h) if network.nonlinearity == "relu" else torch.tanh(h)
        return h, h.clone()

    if isinstance(network, nn.LSTM):
        _, outputs = scan(lstm, (start, start.clone()), projected)
    else:
        _, outputs = scan(gru if isinstance(network, nn.GRU) else elman, start, projected)
    return outputs.transpose(0, 1)


def _from_bidirectional_keys(state_dict, prefix, *_args) -> None:
    """Rename ``torch.nn`` bidirectional RNN keys (``weight_ih_l1_reverse``) in place."""
    pattern = re.compile(rf"^{re.escape(prefix)}((?:weight|bias)_(?:ih|hh))_l(\d+)(_reverse)?$")
    for key in list(state_dict):
        match = pattern.match(key)
        if match:
            name, layer, reverse = match.groups()
            direction = "right_to_left" if reverse else "left_to_right"
            state_dict[f"{prefix}{direction}.{layer}.{name}_l0"] = state_dict.pop(key)


class SequenceEncoder(nn.Module):
    """Embeddings -> dropout -> stacked bidirectional RNN -> dropout: one state per token.

    The input of each token is the concatenation of its word embedding, its `CharEncoder`
    vector (if ``num_chars > 0`` and ``char_encoder`` is not ``None``) and the embedding of
    one extra categorical feature such as a POS tag (if ``num_features > 0``). The `BiRNN`
    reads each direction within each sequence's length, so padding never leaks into the
    states of real tokens: a sequence gets the same states alone or in a batch with longer
    ones. ``dropout``
    is applied to the inputs, between RNN layers and to the states, in training mode only.

    Args:
        num_words: Word vocabulary size, ``pad_index`` included.
        word_dim: Word embedding size.
        hidden: RNN units per direction; states have ``2 * hidden`` features.
        layers: Number of stacked bidirectional layers, 1 to 3.
        rnn: ``"lstm"``, ``"gru"`` or ``"rnn"`` (Elman, tanh).
        dropout: Dropout probability in ``[0, 1)``.
        num_chars: Character vocabulary size; 0 for no character encoder.
        char_dim: Character embedding size.
        char_out: Size of the character encoder's word vectors.
        char_encoder: ``"cnn"``, ``"lstm"`` (see `CharEncoder`) or ``None`` for none.
        num_features: Feature vocabulary size; 0 for no feature embedding.
        feature_dim: Feature embedding size.
        pad_index: Padding entry of the word, character and feature vocabularies.
        word_dropout: In training, the probability that a token's word index is replaced by
            ``unk_index`` (its characters and features stay): the word embedding of rare
            words is then learned to be backed off, as it must be for unseen test words.
        unk_index: The unknown-word entry of the word vocabulary.

    Attributes:
        output_dim: ``2 * hidden``, the size of each state.
        char_encoder: The `CharEncoder`, or ``None``.

    Example:
        >>> encoder = SequenceEncoder(num_words=1000, num_chars=60, num_features=18)
        >>> words = torch.randint(1, 1000, (2, 7))
        >>> chars = torch.randint(1, 60, (2, 7, 12))
        >>> pos = torch.randint(1, 18, (2, 7))
        >>> states, summary = encoder(words, torch.tensor([7, 4]), chars, pos)
        >>> states.shape, summary.shape
        (torch.Size([2, 7, 400]), torch.Size([2, 400]))
    """

    def __init__(
        self,
        num_words: int,
        word_dim: int = 100,
        hidden: int = 200,
        layers: int = 1,
        rnn: str = "lstm",
        dropout: float = 0.5,
        num_chars: int = 0,
        char_dim: int = 30,
        char_out: int = 50,
        char_encoder: str | None = "cnn",
        num_features: int = 0,
        feature_dim: int = 20,
        pad_index: int = 0,
        word_dropout: float = 0.0,
        unk_index: int = 1,
    ):
        super().__init__()
        for name, value in (("num_words", num_words), ("word_dim", word_dim), ("hidden", hidden)):
            _check_positive(name, value)
        if not isinstance(layers, int) or not 1 <= layers <= MAX_LAYERS:
            raise ValueError(f"layers must be an integer in [1, {MAX_LAYERS}], got {layers!r}")
        if rnn not in RNN_KINDS:
            raise ValueError(f"rnn must be one of {RNN_KINDS}, got {rnn!r}")
        for name, value in (("dropout", dropout), ("word_dropout", word_dropout)):
            if not isinstance(value, int | float) or not 0 <= value < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
        if char_encoder is not None and char_encoder not in CHAR_ENCODER_KINDS:
            raise ValueError(
                f"char_encoder must be one of {CHAR_ENCODER_KINDS} or None, got {char_encoder!r}"
            )
        for name, value in (("num_chars", num_chars), ("num_features", num_features)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        _check_pad_index(pad_index, {"num_words": num_words})
        if word_dropout > 0:
            if not isinstance(unk_index, int) or not 0 <= unk_index < num_words:
                raise ValueError(f"unk_index must lie in [0, num_words), got {unk_index!r}")
        self.num_words = num_words
        self.pad_index = pad_index
        self.word_dropout = word_dropout
        self.unk_index = unk_index
        self.output_dim = 2 * hidden
        self.word_embedding = nn.Embedding(num_words, word_dim, padding_idx=pad_index)
        input_dim = word_dim
        self.char_encoder = None
        if num_chars > 0 and char_encoder is not None:
            self.char_encoder = CharEncoder(num_chars, char_dim, char_out, char_encoder, pad_index)
            input_dim += char_out
        self.feature_embedding = None
        if num_features > 0:
            _check_positive("feature_dim", feature_dim)
            _check_pad_index(pad_index, {"num_features": num_features})
            self.feature_embedding = nn.Embedding(num_features, feature_dim, padding_idx=pad_index)
            input_dim += feature_dim
        self.dropout = nn.Dropout(dropout)
        self.rnn = BiRNN(input_dim, hidden, layers, rnn, dropout)

    def forward(
        self,
        words: Tensor,
        lengths: Tensor,
        chars: Tensor | None = None,
        features: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Encode a right-padded batch.

        Args:
            words: ``(B, T)`` integer word indices.
            lengths: ``(B,)`` integers in ``[1, T]``, or a ``(B, T)`` bool prefix mask.
            chars: ``(B, T, C)`` right-padded character indices; required exactly when the
                encoder has a character encoder.
            features: ``(B, T)`` feature indices; required exactly when ``num_features > 0``.

        Returns:
            ``states`` ``(B, T, 2 * hidden)``, zero past each length, and ``summary``
            ``(B, 2 * hidden)``: the last forward state and the first backward state of each
            sequence, concatenated (after dropout, like ``states``), for a many-to-one head.
        """
        device = self.word_embedding.weight.device
        words = _check_indices("words", words, "(B, T)", self.num_words, device)
        batch, steps = words.shape
        if isinstance(lengths, Tensor) and lengths.device != device:
            raise ValueError(f"lengths is on {lengths.device} but must be on {device}")
        lengths = resolve_lengths(lengths, batch, steps, device)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(words.shape, device=device) < self.word_dropout
            words = torch.where(dropped & (words != self.pad_index), self.unk_index, words)
        inputs = [self.word_embedding(words)]
        if self.char_encoder is not None:
            inputs.append(self.char_encoder(self._check_chars(chars, words)))
        elif chars is not None:
            raise ValueError("chars given, but the encoder has no character encoder")
        if self.feature_embedding is not None:
            inputs.append(self.feature_embedding(self._check_features(features, words)))
        elif features is not None:
            raise ValueError("features given, but the encoder has no feature embedding")
        embedded = self.dropout(torch.cat(inputs, dim=2))
        states = self.dropout(self.rnn(embedded, lengths))
        return states, BiRNN.end_states(states, lengths)

    def _check_chars(self, chars: Tensor | None, words: Tensor) -> Tensor:
        if chars is None:
            raise ValueError("chars (B, T, C) is required: the encoder has a character encoder")
        if not isinstance(chars, Tensor) or chars.shape[:2] != words.shape:
            got = tuple(chars.shape) if isinstance(chars, Tensor) else type(chars).__name__
            raise ValueError(
                f"chars must have shape (B, T, C) with (B, T) = {tuple(words.shape)}, got {got}"
            )
        return chars

    def _check_features(self, features: Tensor | None, words: Tensor) -> Tensor:
        if features is None:
            raise ValueError("features (B, T) is required: the encoder has num_features > 0")
        size = self.feature_embedding.num_embeddings
        features = _check_indices("features", features, "(B, T)", size, words.device)
        if features.shape != words.shape:
            raise ValueError(
                f"features must have shape (B, T) = {tuple(words.shape)}, "
                f"got {tuple(features.shape)}"
            )
        return features

    @classmethod
    def from_config(cls, config: object, num_words: int) -> SequenceEncoder:
        """The encoder of a model whose config names it by the fields of `Seq2SeqConfig` and
        `SpanScorerConfig`: ``word_dim``, ``hidden``, ``encoder_layers``, ``dropout``,
        ``num_chars`` (a character CNN when positive), ``char_dim``, ``char_out``,
        ``num_features``, ``feature_dim``, ``pad_index``, ``word_dropout`` and ``unk_index``;
        ``num_words`` is its word vocabulary size."""
        return cls(
            num_words=num_words,
            word_dim=config.word_dim,
            hidden=config.hidden,
            layers=config.encoder_layers,
            dropout=config.dropout,
            num_chars=config.num_chars,
            char_dim=config.char_dim,
            char_out=config.char_out,
            char_encoder="cnn" if config.num_chars else None,
            num_features=config.num_features,
            feature_dim=config.feature_dim,
            pad_index=config.pad_index,
            word_dropout=config.word_dropout,
            unk_index=config.unk_index,
        )

    def load_vectors(self, path: str | os.PathLike, vocabulary_tokens: list[str]) -> int:
        """Initialise word embeddings from a text vectors file (GloVe or word2vec text format).

        Each line is ``word v1 v2 ... v_word_dim`` separated by whitespace; an optional first
        line ``count dim`` (two integers) is a header. Rows of vocabulary words found in the
        file are overwritten (the first occurrence wins); the others, and the ``pad_index``
        row, are left as they are. Matching is exact (case-sensitive).

        Args:
            path: The vectors file (UTF-8; a byte-order mark is dropped), read line by line
                (`hybrid.files.iter_lines`).
            vocabulary_tokens: The token of every word index, ``num_words`` of them.

        Returns:
            How many vocabulary words (padding excluded) were found in the file.

        Raises:
            ValueError: ``vocabulary_tokens`` has the wrong length or duplicates, a line of
                the file (named as ``path:line``) does not hold ``word_dim`` numbers, or is
                not UTF-8 (naming the file and line).
        """
        if len(vocabulary_tokens) != self.num_words:
            raise ValueError(
                f"vocabulary_tokens must have num_words = {self.num_words} tokens, "
                f"got {len(vocabulary_tokens)}"
            )
        index = {}
        for i, token in enumerate(vocabulary_tokens):
            if token in index:
                raise ValueError(f"vocabulary_tokens has a duplicate token {token!r}")
            if i != self.pad_index:
                index[token] = i
        weight = self.word_embedding.weight
        dim = weight.shape[1]
        found: set[int] = set()
        with torch.no_grad():
            for number, line in enumerate(iter_lines(path), start=1):
                fields = line.split()
                if not fields:
                    continue
                where = f"{os.fspath(path)}:{number}"
                if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    if int(fields[1]) != dim:
                        raise ValueError(
                            f"{where}: header gives dimension {fields[1]}, word_dim is {dim}"
                        )
                    continue
                if len(fields) - 1 != dim:
                    raise ValueError(
                        f"{where}: expected a word and {dim} values, got {len(fields) - 1} values"
                    )
                row = index.get(fields[0])
                if row is None or row in found:
                    continue
                try:
                    values = [float(v) for v in fields[1:]]
                except ValueError as error:
                    raise ValueError(f"{where}: {error}") from None
                weight[row] = torch.tensor(values, dtype=weight.dtype, device=weight.device)
                found.add(row)
        return len(found)
