"""A sequence tagger: one encoder, a choice of structured or unstructured head, an intent head.

The comparison the library is built for: the same `SequenceEncoder` under a per-token
softmax (the pure-RNN baseline), a CRF, or a structured SVM.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import CRF, StructuredSVM
from ..nn.encoders import SequenceEncoder
from ..nn.lm import NeighbourWordLoss
from ..nn.pooling import SequenceClassifier
from ..saved import load_trained, save_trained
from ..structured import kbest
from .batching import Batch, TaggingVocabulary
from .schemes import allowed_transitions

HEADS = ("softmax", "crf", "ssvm")
INTENT_POOLING = ("last", "attention")


@dataclass
class TaggerConfig:
    """Architecture of a `Tagger` (plain data: saved with the weights).

    Attributes:
        head: ``"softmax"``, ``"crf"`` or ``"ssvm"``.
        word_dim: Word embedding size.
        hidden: Hidden size of each RNN direction.
        layers: Stacked bidirectional layers (1-3).
        rnn: ``"lstm"``, ``"gru"`` or ``"rnn"``.
        dropout: Dropout on embeddings and RNN outputs.
        char_encoder: ``"cnn"``, ``"lstm"`` or ``None``.
        char_dim: Character embedding size.
        char_out: Size of the per-word character vector.
        feature_dim: Embedding size of the extra token column (e.g. POS), if the data has one.
        scheme: The tags' chunk scheme (``"BIO"``, ``"BIOES"``, ``"IOB1"``): the structured
            heads obey its transition constraints, and chunks are scored and returned; or
            ``None`` for plain labels (POS tags ...): no constraints, token scores, no chunks.
        word_dropout: Probability of replacing a training token's word by ``<unk>`` (see
            `hybrid.nn.encoders.SequenceEncoder`).
        intent_pooling: Input of the intent head: ``"last"`` (the encoder's last states, a
            linear layer) or ``"attention"`` (last states and attention pooling, a hidden
            layer: `hybrid.nn.pooling.SequenceClassifier`).
        intent_weight: Weight of the intent loss when the data has intents.
        lm_weight: Weight of the auxiliary language-modelling loss
            (`hybrid.nn.lm.NeighbourWordLoss`: next and previous word from each direction's
            states); ``0`` for none. Needs ``layers == 1``.
        lm_words: Size of the predicted vocabulary (the most frequent training words).
    """

    head: str = "crf"
    word_dim: int = 100
    hidden: int = 200
    layers: int = 1
    rnn: str = "lstm"
    dropout: float = 0.5
    char_encoder: str | None = "cnn"
    char_dim: int = 30
    char_out: int = 50
    feature_dim: int = 20
    scheme: str | None = "BIO"
    word_dropout: float = 0.0
    intent_pooling: str = "attention"
    intent_weight: float = 1.0
    lm_weight: float = 0.0
    lm_words: int = 7500

    def __post_init__(self):
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.intent_pooling not in INTENT_POOLING:
            raise ValueError(
                f"intent_pooling must be one of {INTENT_POOLING}, got {self.intent_pooling!r}"
            )
        if self.lm_weight < 0:
            raise ValueError(f"lm_weight must be >= 0, got {self.lm_weight!r}")
        if self.lm_weight > 0 and self.layers != 1:
            raise ValueError(
                "lm_weight > 0 needs layers == 1: above the first layer both directions "
                "have read the word to predict"
            )


class Tagger(nn.Module):
    """Encoder + emission projection + tag head (+ optional intent head).

    Saved with `save` and read back with `load` (see `hybrid.saved`).

    Args:
        config: The architecture.
        vocabulary: The task's vocabularies (sizes of embeddings and outputs), kept as
            ``vocabulary`` to turn text into batches and predictions into tags.
    """

    def __init__(self, config: TaggerConfig, vocabulary: TaggingVocabulary):
        super().__init__()
        self.config = config
        self.vocabulary = vocabulary
        self.encoder = SequenceEncoder(
            num_words=len(vocabulary.words),
            word_dim=config.word_dim,
            hidden=config.hidden,
            layers=config.layers,
            rnn=config.rnn,
            dropout=config.dropout,
            num_chars=len(vocabulary.chars) if config.char_encoder else 0,
            char_dim=config.char_dim,
            char_out=config.char_out,
            char_encoder=config.char_encoder,
            num_features=len(vocabulary.features) if vocabulary.features else 0,
            feature_dim=config.feature_dim,
            word_dropout=config.word_dropout,
            unk_index=vocabulary.words.index("<unk>"),
        )
        num_tags = len(vocabulary.tags)
        self.emission = nn.Linear(self.encoder.output_dim, num_tags)
        constraints = None
        if config.scheme is not None:
            constraints = allowed_transitions(config.scheme, vocabulary.tags.tokens)
        self.chain: CRF | StructuredSVM | None = None
        if config.head == "crf":
            self.chain = CRF(num_tags, constraints)
        elif config.head == "ssvm":
            self.chain = StructuredSVM(num_tags, constraints)
        self.language_model = None
        if config.lm_weight > 0:
            self.language_model = NeighbourWordLoss(
                config.hidden,
                min(config.lm_words, len(vocabulary.words)),
                vocabulary.words.index("<unk>"),
            )
        self.intent: nn.Linear | SequenceClassifier | None = None
        if vocabulary.intents is not None:
            dim, classes = self.encoder.output_dim, len(vocabulary.intents)
            if config.intent_pooling == "attention":
                self.intent = SequenceClassifier(dim, classes, config.dropout)
            else:
                self.intent = nn.Linear(dim, classes)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the architecture, the vocabularies and CPU weights as plain data, atomically,
        stamped ``"tagger"`` (`hybrid.saved.save_trained`); read back with `load`."""
        save_trained(path, self, self.vocabulary, "tagger")

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Tagger:
        """Read a tagger written by `save` (``torch.load(weights_only=True)``) onto
        ``device``, in evaluation mode, with its vocabularies as ``vocabulary``.

        Raises:
            ValueError: naming ``path``, when it is missing, not a saved tagger (truncated,
                another format, or another kind of model or a checkpoint: see
                `hybrid.saved.load_saved`).
        """

        def build(saved: dict) -> Tagger:
            vocabulary = TaggingVocabulary.from_dict(saved["vocabulary"])
            config = dict(saved["config"])
            if "intent_pooling" not in config and vocabulary.intents is not None:
                config["intent_pooling"] = "last"  # saved before the option existed
            return cls(TaggerConfig(**config), vocabulary)

        return load_trained(path, "tagger", build, device)

    def forward(self, batch: Batch) -> tuple[Tensor, Tensor | None]:
        """Emission scores ``(B, T, K)`` and intent logits ``(B, I)`` (or ``None``)."""
        emissions, intents, _ = self._scores(batch)
        return emissions, intents

    def _scores(self, batch: Batch) -> tuple[Tensor, Tensor | None, Tensor]:
        """Emissions, intent logits and the encoder states they come from."""
        chars = batch.chars if self.config.char_encoder else None
        states, summary = self.encoder(batch.words, batch.lengths, chars, batch.features)
        intents = None
        if isinstance(self.intent, SequenceClassifier):
            intents = self.intent(states, summary, batch.lengths)
        elif self.intent is not None:
            intents = self.intent(summary)
        return self.emission(states), intents, states

    def loss(self, batch: Batch) -> Tensor:
        """Training loss of a labelled batch: tag loss (mean over sentences) + intent loss
        (+ the weighted language-modelling loss)."""
        emissions, intent_logits, states = self._scores(batch)
        if self.config.head == "softmax":
            per_token = F.cross_entropy(
                emissions.transpose(1, 2), batch.tags, ignore_index=-1, reduction="sum"
            )
            loss = per_token / batch.tags.shape[0]
        elif self.config.head == "crf":
            loss = self.chain.nll(emissions, batch.tags, batch.lengths)
        else:
            loss = self.chain.loss(emissions, batch.tags, batch.lengths)
        if intent_logits is not None and batch.intents is not None:
            intent_loss = F.cross_entropy(intent_logits, batch.intents)
            loss = loss + self.config.intent_weight * intent_loss
        if self.language_model is not None:
            lm_loss = self.language_model(states, batch.words, batch.lengths)
            loss = loss + self.config.lm_weight * lm_loss
        return loss

    @torch.no_grad()
    def predict(self, batch: Batch, k: int | None = None) -> dict[str, Tensor]:
        """Decode a batch.

        Args:
            batch: Sentences (labels not needed).
            k: Also return the ``k`` best taggings (structured heads; the softmax head's
                n-best is the product of independent token choices, also exact).

        Returns:
            ``tags`` ``(B, T)`` (``-1`` past each length), ``confidence`` ``(B, T)`` (posterior
            marginal of the chosen tag: chain marginals for the structured heads, the softmax
            probability otherwise), optionally ``nbest`` ``(B, k, T)`` and ``nbest_scores``
            ``(B, k)``, and ``intents`` ``(B,)`` with ``intent_confidence`` ``(B,)`` when the
            tagger has an intent head.
        """
        emissions, intent_logits = self(batch)
        lengths = batch.lengths
        inside = torch.arange(emissions.shape[1], device=lengths.device)[None] < lengths[:, None]
        if self.chain is None:
            probabilities = emissions.softmax(-1)
            tags = torch.where(inside, probabilities.argmax(-1), -1)
            out = {"tags": tags}
            if k is not None:
                out["nbest"], out["nbest_scores"] = self._softmax_nbest(
                    emissions.log_softmax(-1), lengths, k
                )
        else:
            tags, _ = self.chain.decode(emissions, lengths)
            probabilities = self.chain.marginals(emissions, lengths)
            out = {"tags": tags}
            if k is not None:
                out["nbest"], out["nbest_scores"] = self.chain.decode(emissions, lengths, k=k)
        chosen = probabilities.gather(-1, tags.clamp_min(0)[..., None]).squeeze(-1)
        out["confidence"] = torch.where(inside, chosen, 0.0)
        if intent_logits is not None:
            intent_probabilities = intent_logits.softmax(-1)
            out["intent_confidence"], out["intents"] = intent_probabilities.max(-1)
        return out

    @staticmethod
    def _softmax_nbest(log_probs: Tensor, lengths: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Exact k best taggings under independent tokens: a chain with zero transitions."""
        num_tags = log_probs.shape[-1]
        zeros = log_probs.new_zeros(num_tags, num_tags)
        return kbest(log_probs, zeros, lengths=lengths, k=k)
