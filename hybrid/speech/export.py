"""A trained speech system as modules that TorchScript and ONNX accept, and the files they
export to.

A system exports as two graphs, because audio comes one recording at a time and is decoded
in batches:

- `PortableFrontEnd`: one waveform ``(N,)`` at the system's rate -> its frame features
  ``(T, D)`` before normalisation (`hybrid.speech.corpus.waveform_features`: the pure-PyTorch
  Kaldi MFCCs or filterbanks, and deltas) and their statistics (frame sum and sum of squares,
  float64), written as ``F.features.onnx`` (or ``.features.pt``) beside ``F``;
- `PortableRecognizer`: a batch of those features with the statistics to normalise them by
  (their own under per-utterance CMVN, all the recordings' under per-speaker CMVN, unused
  without CMVN) -> the words: the network (or the GMM) and, for the HMM systems, the
  posteriors over the priors with the acoustic scale and Viterbi over the decoding graph to
  word indices; the pure RNN's argmax or collapsed frame labels; CTC's exact one-word choice,
  or its prefix beam search over strings.

`export_recognizer` writes both, with ``F.json``: the words, the sample rate, the feature
settings and the names of the inputs and outputs, which is all `hybrid.deploy` needs.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor, nn

from ..commands import load_model
from ..ctc.portable import GreedyCTCDecoder, PrefixBeamCTCDecoder
from ..exporting import check_format, write_exported
from ..nn.decoders import GraphDecoder, export_shapes
from ..structured import portable as dp
from .corpus import FeatureConfig, waveform_features
from .features import _frame_sizes, _normaliser
from .recognizer import CTC_BEAM, FRAME_BUDGET, Recognizer

__all__ = ["PortableFrontEnd", "PortableRecognizer", "export_model", "export_recognizer"]


class _Features(nn.Module):
    """`waveform_features` at a fixed rate and configuration: ``(N,)`` -> ``(T, D)``."""

    def __init__(self, sample_rate: int, config: FeatureConfig):
        super().__init__()
        self.sample_rate, self.config = sample_rate, config

    def forward(self, waveform: Tensor) -> Tensor:
        return waveform_features(waveform, self.sample_rate, self.config)


class PortableFrontEnd(nn.Module):
    """``forward(waveform (N,))`` -> ``features`` ``(T, D)`` float32 before normalisation,
    and ``statistics`` ``(2, D)`` float64: the sum and the sum of squares of each dimension
    over the ``T`` frames (what CMVN accumulates, as Kaldi's ``compute-cmvn-stats``).

    Args:
        sample_rate: The system's rate (Hz); the waveform must be at that rate.
        config: The system's features.
    """

    input_names = ("waveform",)
    output_names = ("features", "statistics")

    def __init__(self, sample_rate: int, config: FeatureConfig):
        super().__init__()
        self.network = _Features(sample_rate, config)
        self.sample_rate = sample_rate

    def forward(self, waveform: Tensor) -> tuple[Tensor, Tensor]:
        features = self.network(waveform)
        frames = features.double()
        return features, torch.stack([frames.sum(0), frames.square().sum(0)])

    def example(self) -> tuple[Tensor]:
        """Half a second of noise."""
        generator = torch.Generator().manual_seed(0)
        return (0.1 * torch.randn(self.sample_rate // 2, generator=generator),)

    def dynamic_shapes(self) -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: the number of samples."""
        return {"waveform": {0: torch.export.Dim("samples", min=self.sample_rate // 10)}}


class _Scores(nn.Module):
    """The traced part of a recognizer: normalised features, then the frame scores the
    decoder reads: ``(B, T, P)`` GMM log-likelihoods or scaled posteriors of an HMM system,
    ``(B, T, C)`` log-posteriors of a frame network, ``(B, C)`` logits of the utterance
    classifier."""

    def __init__(self, recognizer: Recognizer):
        super().__init__()
        self.kind = recognizer.kind
        self.cmvn = recognizer.features.cmvn
        self.variance = recognizer.features.cmvn_variance
        self.model = recognizer.scorer if self.kind == "gmm" else recognizer.network
        self.priors = getattr(recognizer, "priors", None)
        self.classify = recognizer.kind == "rnn" and recognizer.grammar == "isolated"

    def forward(
        self, features: Tensor, lengths: Tensor, frames: Tensor, statistics: Tensor
    ) -> Tensor:
        if self.cmvn != "none":
            mean, scale = _normaliser(
                frames.unsqueeze(1), statistics[:, 0], statistics[:, 1], self.variance
            )
            features = ((features.double() - mean.unsqueeze(1)) * scale.unsqueeze(1)).float()
        if self.kind == "gmm":
            return self.model(features)
        scores = self.model(features, lengths)
        if self.classify:
            return scores
        scores = scores.log_softmax(-1)
        return scores if self.priors is None else self.priors(scores)


class _GraphWords(nn.Module):
    """The words ``(B, T)`` and their counts ``(B,)`` of the best path through a graph, and
    whether there is one ``(B,)``."""

    def __init__(self, recognizer: Recognizer):
        super().__init__()
        self.graph = GraphDecoder(recognizer.graph)

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, words, counts, best = self.graph(scores, lengths)
        return words, counts, best > float("-inf")


class _BestClass(nn.Module):
    """One word per utterance: the argmax of ``(B, C)`` logits, as ``(B, 1)`` with counts 1."""

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        found = torch.ones_like(lengths, dtype=torch.bool)
        return scores.argmax(-1, keepdim=True), torch.ones_like(lengths), found


class _GreedyWords(nn.Module):
    """Greedy CTC decoding of frame log-posteriors with ``blank`` (the pure RNN's silence)."""

    def __init__(self, blank: int):
        super().__init__()
        self.greedy = GreedyCTCDecoder(blank)

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        words, counts, _ = self.greedy(scores, lengths)
        return words, counts, torch.ones_like(lengths, dtype=torch.bool)


class _BeamWords(nn.Module):
    """CTC prefix beam search: the best string of words of each utterance."""

    def __init__(self, blank: int):
        super().__init__()
        self.search = PrefixBeamCTCDecoder(beam=CTC_BEAM, blank=blank, nbest=1)

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        labels, counts, _ = self.search(scores, lengths)
        return labels[:, 0], counts[:, 0], torch.ones_like(lengths, dtype=torch.bool)


class _OneWordCTC(nn.Module):
    """Isolated words under CTC: the word ``w`` whose one-symbol target is most likely,
    ``log P(w | x)`` summed over every alignment (blanks, then ``w`` one or more times, then
    blanks), as the log-partition of a three-state chain per word (blank, ``w``, blank)."""

    def __init__(self, num_words: int, blank: int):
        super().__init__()
        self.num_words, self.blank = num_words, blank
        never = float("-inf")
        allowed = torch.tensor([[0.0, 0.0, never], [never, 0.0, 0.0], [never, never, 0.0]])
        self.register_buffer("transitions", allowed)
        self.register_buffer("start", torch.tensor([0.0, 0.0, never]))
        self.register_buffer("end", torch.tensor([never, 0.0, 0.0]))

    def forward(self, scores: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        batch, steps = scores.shape[0], scores.shape[1]
        words = scores[:, :, : self.num_words].transpose(1, 2)  # (B, W, T)
        blank = scores[:, :, self.blank].unsqueeze(1).expand_as(words)
        chains = torch.stack([blank, words, blank], -1).reshape(-1, steps, 3)
        repeated = lengths.repeat_interleave(self.num_words)
        log_z = dp.chain_log_partition(chains, repeated, self.transitions, self.start, self.end)
        best = log_z.view(batch, self.num_words).argmax(-1, keepdim=True)
        return best, torch.ones_like(lengths), torch.ones_like(lengths, dtype=torch.bool)


def _decoder(recognizer: Recognizer) -> nn.Module:
    num_words = len(recognizer.topology.words)
    if recognizer.kind in ("gmm", "dnn", "bilstm"):
        return _GraphWords(recognizer)
    if recognizer.kind == "rnn":
        return _BestClass() if recognizer.grammar == "isolated" else _GreedyWords(num_words)
    blank = recognizer.system["model"]["blank"]
    if recognizer.grammar == "isolated":
        return _OneWordCTC(num_words, blank)
    return _BeamWords(blank)


class PortableRecognizer(nn.Module):
    """``forward(features (B, T, D), lengths (B,), frames (B,), statistics (B, 2, D))`` ->
    ``words`` ``(B, L)`` (word indices, left-aligned, ``-1`` padded) and ``word_counts``
    ``(B,)``: the words `Recognizer.decode` gives for the features normalised as the system
    normalises them; and ``found`` ``(B,)``: whether the utterance has a path through the
    decoding graph (always, but for an HMM system's utterance too short for any word, which
    has no words and which `Recognizer.decode` refuses).

    ``features`` are those of `PortableFrontEnd` (before normalisation), zero past each
    length; ``frames`` (float64) and ``statistics`` (float64 sums and sums of squares) are
    the statistics each utterance is normalised with: its own under ``cmvn="utterance"``,
    those of all the recordings recognised together under ``cmvn="speaker"`` (unused under
    ``"none"``). A sequence with no path gets no words.

    Args:
        recognizer: A trained system with its feature settings; its network is put in
            evaluation mode.
    """

    input_names = ("features", "lengths", "frames", "statistics")
    output_names = ("words", "word_counts", "found")

    def __init__(self, recognizer: Recognizer):
        super().__init__()
        if recognizer.features is None or recognizer.sample_rate is None:
            raise ValueError("the system has no feature settings and rate: it cannot be exported")
        if recognizer.kind != "gmm":
            recognizer.network.eval()
        self.network = _Scores(recognizer)
        self.decoder = _decoder(recognizer)
        self.dim = recognizer.features.dim

    def forward(
        self, features: Tensor, lengths: Tensor, frames: Tensor, statistics: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        return self.decoder(self.network(features, lengths, frames, statistics), lengths)

    def example(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Two utterances of 12 and 9 frames, normalised by their own statistics."""
        generator = torch.Generator().manual_seed(0)
        features = torch.randn(2, 12, self.dim, generator=generator)
        lengths = torch.tensor([12, 9])
        features[1, 9:] = 0
        frames = lengths.double()
        rows = features.double()
        statistics = torch.stack([rows.sum(1), rows.square().sum(1)], 1)
        return features, lengths, frames, statistics

    @staticmethod
    def dynamic_shapes() -> dict[str, dict[int, object]]:
        """``dynamic_shapes`` for ``torch.onnx.export``: batch and frames."""
        shapes = export_shapes("features", "lengths")
        batch = shapes["lengths"][0]
        return {**shapes, "frames": {0: batch}, "statistics": {0: batch}}


def export_recognizer(recognizer: Recognizer, fmt: str, out: str | os.PathLike[str]) -> Path:
    """Write ``recognizer`` as ``out`` (`PortableRecognizer`) and its front end as
    ``out``'s name with ``.features`` before its suffix (`PortableFrontEnd`), in ``fmt``
    (``"onnx"`` or ``"torchscript"``), and their description as ``out`` + ``.json``; return
    the description's path.

    Raises:
        ValueError: An unknown ``fmt``, or a system saved without its feature settings.
    """
    check_format(fmt)
    out = Path(out)
    portable = PortableRecognizer(recognizer)
    frontend = f"{out.stem}.features{out.suffix}"
    description = {
        "kind": "recognizer",
        "system": recognizer.kind,
        "words": list(recognizer.topology.words),
        "sample_rate": recognizer.sample_rate,
        "features": asdict(recognizer.features),
        "frontend": frontend,
        "frontend_inputs": list(PortableFrontEnd.input_names),
        "frontend_outputs": list(PortableFrontEnd.output_names),
        "frame_budget": FRAME_BUDGET,
        "window_samples": _frame_sizes(recognizer.sample_rate, 25.0, 10.0, True)[0],
    }
    companions = {frontend: PortableFrontEnd(recognizer.sample_rate, recognizer.features)}
    return write_exported(portable, fmt, out, description, companions)


def export_model(path: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> Path:
    """`export_recognizer` of the system saved at ``path`` (`Recognizer.save`)."""
    return export_recognizer(load_model(Recognizer.load, str(path)), fmt, out)
