"""A trained tagger as one module that TorchScript and ONNX accept, and the files it exports to.

`PortableTagger` runs a `Tagger`'s network (encoder, emission layer, intent head) and decodes
with the portable decoders of `hybrid.nn.decoders`: the tags, confidences, n-best taggings and
intents of `Tagger.predict`, from padded index tensors. `export_tagger` writes it as a
TorchScript or ONNX file with a JSON file beside it holding the vocabularies, the chunk scheme
and the names of the outputs, which is all `hybrid.deploy` needs to tag text without torch.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ..commands import load_model
from ..exporting import check_format, word_shapes, write_exported
from ..nn.decoders import KBestDecoder, MarginalDecoder, ViterbiDecoder
from .batching import Batch
from .model import Tagger

INPUTS = ("words", "lengths", "chars", "features")


class _TaggerScores(nn.Module):
    """Emissions ``(B, T, K)`` and intent logits ``(B, I)`` (``I = 0`` without an intent
    head) of a tagger, from its padded inputs."""

    def __init__(self, tagger: Tagger):
        super().__init__()
        self.tagger = tagger

    def forward(
        self, words: Tensor, lengths: Tensor, chars: Tensor, features: Tensor
    ) -> tuple[Tensor, Tensor]:
        with_features = self.tagger.vocabulary.features is not None
        batch = Batch(words, chars, lengths, features if with_features else None, None, None)
        emissions, intents = self.tagger(batch)
        if intents is None:
            intents = emissions.new_zeros(emissions.shape[0], 0)
        return emissions, intents


class PortableTagger(nn.Module):
    """``forward(words (B, T), lengths (B,), chars (B, T, C), features (B, T))`` -> the list of
    outputs named in ``output_names``: ``tags`` ``(B, T)`` (``-1`` past each length) and
    ``confidence`` ``(B, T)``, then ``nbest`` ``(B, k, T)`` and ``nbest_scores`` ``(B, k)``
    with ``k``, then ``intents`` and ``intent_confidence`` ``(B,)`` with an intent head: the
    values of `Tagger.predict`. ``features`` is read only by a tagger trained with them.

    Args:
        tagger: A trained tagger; this puts it in evaluation mode (no dropout).
        k: Also return the ``k`` best taggings (``None``: not).

    Raises:
        ValueError: ``k`` neither ``None`` nor an integer ``>= 1``.
    """

    def __init__(self, tagger: Tagger, k: int | None = None):
        super().__init__()
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ValueError(f"k must be None or an integer >= 1, got {k!r}")
        tagger.eval()
        self.network = _TaggerScores(tagger)
        chain = tagger.chain
        # the structured heads decode their chain; the softmax head takes each token's best
        # tag, and its n-best is that of a chain with zero transitions (`Tagger.predict`)
        self.best = None if chain is None else ViterbiDecoder.from_chain(chain)
        self.posteriors = None if chain is None else MarginalDecoder.from_chain(chain)
        self.nbest = None
        if k is not None:
            num_tags = len(tagger.vocabulary.tags)
            self.nbest = (
                KBestDecoder(torch.zeros(num_tags, num_tags), k=k)
                if chain is None
                else KBestDecoder.from_chain(chain, k=k)
            )
        self.intent = tagger.vocabulary.intents is not None
        self.input_names = list(INPUTS)
        self.output_names = ["tags", "confidence"]
        if k is not None:
            self.output_names += ["nbest", "nbest_scores"]
        if self.intent:
            self.output_names += ["intents", "intent_confidence"]

    def forward(
        self, words: Tensor, lengths: Tensor, chars: Tensor, features: Tensor
    ) -> list[Tensor]:
        emissions, intent_logits = self.network(words, lengths, chars, features)
        inside = torch.arange(emissions.shape[1], device=lengths.device) < lengths.unsqueeze(1)
        if self.best is not None and self.posteriors is not None:
            tags, _ = self.best(emissions, lengths)
            probabilities, _ = self.posteriors(emissions, lengths)
        else:
            probabilities = emissions.softmax(-1)
            tags = torch.where(inside, probabilities.argmax(-1), torch.full_like(words, -1))
        chosen = probabilities.gather(2, tags.clamp(min=0).unsqueeze(2)).squeeze(2)
        outputs = [tags, torch.where(inside, chosen, torch.zeros_like(chosen))]
        if self.nbest is not None:
            scores = emissions if self.best is not None else emissions.log_softmax(-1)
            outputs.extend(self.nbest(scores, lengths))
        if self.intent:
            intent_confidence, intents = intent_logits.softmax(-1).max(-1)
            outputs.extend([intents, intent_confidence])
        return outputs

    def example(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Inputs of two sentences of 3 and 2 words of up to 4 characters, for tracing."""
        vocabulary = self.network.tagger.vocabulary
        generator = torch.Generator().manual_seed(0)
        words = torch.randint(2, len(vocabulary.words), (2, 3), generator=generator)
        chars = torch.randint(1, len(vocabulary.chars), (2, 3, 4), generator=generator)
        chars[:, :, 3] = 0
        features = torch.ones(2, 3, dtype=torch.long)
        lengths = torch.tensor([3, 2])
        words[1, 2], chars[1, 2], features[1, 2] = 0, 0, 0
        return words, lengths, chars, features

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch, words and characters."""
        return word_shapes("features")


def export_model(
    path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str], k: int | None = None
) -> Path:
    """`export_tagger` of the tagger saved at ``path`` (`Tagger.save`)."""
    return export_tagger(load_model(Tagger.load, str(path)), fmt, out, k)


def export_tagger(
    tagger: Tagger, fmt: str, out: str | os.PathLike[str], k: int | None = None
) -> Path:
    """Write ``tagger`` as ``out`` (``fmt``: ``"onnx"`` or ``"torchscript"``) and its
    description as ``out`` + ``.json`` (`hybrid.exporting.write_exported`); return the
    description's path.

    Raises:
        ValueError: An unknown ``fmt``, and those of `PortableTagger`.
    """
    check_format(fmt)
    description = {
        "kind": "tagger",
        "k": k,
        "head": tagger.config.head,
        "scheme": tagger.config.scheme,
        "vocabulary": tagger.vocabulary.to_dict(),
    }
    return write_exported(PortableTagger(tagger, k), fmt, out, description)
