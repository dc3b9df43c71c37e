"""Saved speech systems: write one after training, load it and transcribe audio files.

A saved system is plain data (loads with ``torch.load(weights_only=True)``): the system kind,
the topology, the feature settings, the grammar, the decoding scales and the weights (the
GMM emissions, or a network with its state priors).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from ..ctc.align import greedy_decode
from ..ctc.beam import prefix_beam_search
from ..ctc.loss import ctc_loss
from ..files import save_atomic
from ..nn import GMMEmissions, ScaledPosteriors
from .acoustic import AcousticConfig, build
from .corpus import FeatureConfig, normalise_features, waveform_features
from .decoder import decode, frame_scores
from .features import pad_features
from .topology import Topology, decoding_graph, isolated_grammar, loop_grammar
from .train import log_posteriors

__all__ = ["CTC_BEAM", "Recognizer", "save_system", "system_dict"]

#: Beam of the CTC prefix search on strings.
CTC_BEAM = 10


def _sequences(labels: Tensor, counts: Tensor) -> list[tuple[int, ...]]:
    """Padded label rows ``(B, L)`` with their counts ``(B,)`` as tuples."""
    return [tuple(row[:n].tolist()) for row, n in zip(labels, counts.tolist(), strict=True)]


def system_dict(kind: str, topology: Topology, grammar: str, scales: dict, model: dict) -> dict:
    """A system as plain data.

    Args:
        kind: ``"gmm"``, ``"dnn"``, ``"bilstm"``, ``"rnn"`` or ``"ctc"``.
        topology: Word and silence HMMs.
        grammar: ``"isolated"`` or ``"loop"``.
        scales: ``acoustic_scale``, ``prior_scale`` and ``word_penalty``.
        model: GMM: ``emissions`` (a `GMMEmissions` state dict) and ``self_loop``; hybrid:
            ``config`` (an `AcousticConfig` as a dict), ``weights``, ``log_priors`` and
            ``self_loop``; pure RNN: ``config`` and ``weights``; CTC: also ``blank``.
    """
    return {
        "kind": kind,
        "topology": asdict(topology),
        "features": None,
        "grammar": grammar,
        "scales": dict(scales),
        "model": model,
    }


def save_system(path: Path, system: dict, features: FeatureConfig) -> None:
    """Write ``system`` with the feature settings it was trained on, atomically."""
    save_atomic({**system, "features": asdict(features)}, Path(path))


def _feature_config(saved: dict) -> FeatureConfig:
    """The saved feature settings; systems saved when ``cmvn`` was a flag (per-utterance mean
    normalisation, or none) load with its meaning."""
    if isinstance(saved.get("cmvn"), bool):
        saved = {**saved, "cmvn": "utterance" if saved["cmvn"] else "none", "cmvn_variance": False}
    return FeatureConfig(**saved)


class Recognizer:
    """A speech system ready to decode: ``recognize`` turns waveforms into words,
    ``decode`` turns features into word indices."""

    def __init__(self, saved: dict) -> None:
        self.system = saved
        self.kind = saved["kind"]
        self.topology = Topology(
            **{**saved["topology"], "words": tuple(saved["topology"]["words"])}
        )
        self.features = None if saved["features"] is None else _feature_config(saved["features"])
        self.grammar = saved["grammar"]
        scales = saved["scales"]
        model = saved["model"]
        num_words = len(self.topology.words)
        if self.kind in ("gmm", "dnn", "bilstm"):
            grammar = (
                isolated_grammar(num_words)
                if self.grammar == "isolated"
                else loop_grammar(num_words, scales["word_penalty"])
            )
            self.graph = decoding_graph(self.topology, grammar, model["self_loop"])
        if self.kind == "gmm":
            state = model["emissions"]
            self.scorer = GMMEmissions(state["log_weights"].exp(), state["means"], state["covars"])
        else:
            self.network = build(AcousticConfig(**model["config"]))
            self.network.load_state_dict(model["weights"])
            self.network.eval()
            if self.kind in ("dnn", "bilstm"):
                self.priors = ScaledPosteriors(
                    model["log_priors"], scales["acoustic_scale"], scales["prior_scale"]
                )

    @classmethod
    def load(cls, path: str | Path) -> Recognizer:
        """Read a system written by `save_system`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"model {path} does not exist (a models/<task>-<system>.pt of a run)")
        return cls(torch.load(path, weights_only=True))

    def recognize(self, waveforms: list[tuple[Tensor, int]]) -> list[tuple[str, ...]]:
        """Words spoken in each ``(waveform (N,), sample_rate)``.

        Under per-speaker normalisation (``cmvn="speaker"``) the waveforms are taken as one
        speaker's: their statistics are pooled (recognize one at a time to normalise each on
        its own).
        """
        if self.features is None:
            raise ValueError("this system was not saved with its feature settings")
        raw = [waveform_features(w, rate, self.features) for w, rate in waveforms]
        features = normalise_features(raw, ["speaker"] * len(raw), self.features)
        return [tuple(self.topology.words[w] for w in h) for h in self.decode(features)]

    def scaled_scores(self, features: list[Tensor]) -> list[Tensor]:
        """An HMM system's frame scores per utterance ``(T_i, P)``: GMM log-likelihoods, or a
        hybrid network's log-posteriors with the priors divided out."""
        if self.kind == "gmm":
            return frame_scores(self.scorer, features)
        if self.kind not in ("dnn", "bilstm"):
            raise ValueError(f"scaled_scores needs an HMM system, this one is {self.kind!r}")
        return [self.priors(p[None])[0] for p in log_posteriors(self.network, features)]

    def decode(self, features: list[Tensor]) -> list[tuple[int, ...]]:
        """Word indices of each utterance's features ``(T_i, D)``."""
        if self.kind in ("gmm", "dnn", "bilstm"):
            return decode(self.scaled_scores(features), self.graph)
        if self.kind == "ctc":
            return self._decode_ctc(features)
        if self.grammar == "isolated":
            with torch.no_grad():
                x, lengths = pad_features(features)
                return [(int(w),) for w in self.network(x, lengths).argmax(-1)]
        # Naive collapsing of the frame classifier's labels is greedy CTC decoding with
        # silence (class num_words) as the blank: repeats merged, silence dropped.
        log_probs, lengths = pad_features(log_posteriors(self.network, features))
        labels, counts, _ = greedy_decode(log_probs, lengths, blank=len(self.topology.words))
        return _sequences(labels, counts)

    def _decode_ctc(self, features: list[Tensor]) -> list[tuple[int, ...]]:
        """Isolated words: the word whose one-symbol target has the highest CTC probability
        (exact under the one-word grammar); strings: prefix beam search."""
        blank = self.system["model"]["blank"]
        log_probs, lengths = pad_features(log_posteriors(self.network, features))
        if self.grammar != "isolated":
            best = prefix_beam_search(log_probs, lengths, beam=CTC_BEAM, blank=blank, nbest=1)
            return _sequences(best.labels[:, 0], best.label_lengths[:, 0])
        batch = len(features)
        losses = torch.stack(
            [
                ctc_loss(
                    log_probs,
                    torch.full((batch, 1), w),
                    lengths,
                    blank=blank,
                    reduction="none",
                    zero_infinity=True,
                )
                for w in range(len(self.topology.words))
            ]
        )
        return [(int(w),) for w in losses.argmin(0)]
