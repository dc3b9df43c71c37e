"""Saved speech systems: write one after training, load it and transcribe audio files.

A saved system (`Recognizer.save`, read back with `Recognizer.load`) is plain data (loads
with ``torch.load(weights_only=True)``): the system kind, the topology, the feature settings,
the sample rate, the grammar, the decoding scales and the weights (the GMM emissions, or a
network with its state priors).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..batching import WINDOW, map_in_batches
from ..ctc.align import greedy_decode
from ..ctc.beam import prefix_beam_search
from ..ctc.loss import ctc_loss
from ..files import save_atomic
from ..nn import GMMEmissions, ScaledPosteriors
from ..saved import load_saved, stamp
from ..structured import graph_nbest
from .acoustic import AcousticConfig, build
from .audio import resample
from .corpus import FeatureConfig, normalise_features, waveform_features
from .decoder import (
    Alignment,
    boundary_time,
    decode,
    decode_paths,
    forced_alignment,
    frame_scores,
    label_sequences,
    phone_segments,
    word_spans,
)
from .features import pad_features
from .graph import decoding_graph
from .topology import PhoneTopology, Topology, task_grammar, topology_from_dict
from .train import log_posteriors

__all__ = [
    "CTC_BEAM",
    "FRAME_BUDGET",
    "LEGACY_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "Recognizer",
    "Span",
    "Transcript",
    "system_dict",
]

#: Beam of the CTC prefix search on strings.
CTC_BEAM = 10

#: The rate of systems saved before their rate was recorded: every recipe then trained at
#: 8 kHz (FSDD's recordings, and the synthetic corpus at its default rate).
LEGACY_SAMPLE_RATE = 8000

#: Most padded frames decoded together (200 s of audio at 100 frames a second).
FRAME_BUDGET = 20000

#: The lowest rate (Hz) of audio that `Recognizer.recognize` resamples: speech needs a band
#: of a few kHz (telephone audio is sampled at 8000 Hz), so a rate below this is a broken
#: header, not speech, and resampling it would multiply the samples by the ratio of the rates
#: (8000 times for a 1 Hz header, gigabytes from a small file).
MIN_SAMPLE_RATE = 1000


@dataclass(frozen=True)
class Span:
    """A word or phone and where it lies in the audio.

    Attributes:
        label: The word or phone.
        start: Its start (s), at the boundary before its first frame
            (`hybrid.speech.decoder.boundary_time`).
        end: Its end (s), at the boundary after its last frame.
    """

    label: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    """An utterance's words, and over phone HMMs its phones, in order, with their times
    (silence left out)."""

    words: tuple[Span, ...]
    phones: tuple[Span, ...]


def system_dict(
    kind: str, topology: Topology | PhoneTopology, grammar: str | dict, scales: dict, model: dict
) -> dict:
    """A system as plain data.

    Args:
        kind: ``"gmm"``, ``"dnn"``, ``"bilstm"``, ``"rnn"`` or ``"ctc"``.
        topology: Word (or phone) and silence HMMs.
        grammar: The decoding grammar as plain data (`hybrid.speech.topology.task_grammar`):
            ``"isolated"``, ``"loop"``, phrases or a unigram word loop.
        scales: ``acoustic_scale``, ``prior_scale`` and ``word_penalty``.
        model: GMM: ``emissions`` (a `GMMEmissions` state dict) and ``self_loop``; hybrid:
            ``config`` (an `AcousticConfig` as a dict), ``weights``, ``log_priors`` and
            ``self_loop``; pure RNN: ``config`` and ``weights``; CTC: also ``blank``.
    """
    return {
        "kind": kind,
        "topology": topology.to_dict(),
        "features": None,
        "sample_rate": None,
        "grammar": grammar,
        "scales": dict(scales),
        "model": model,
    }


def _sample_rate(rate: Any) -> int:
    """``rate`` if it is a positive integer (a number of Hz), else a ``ValueError``."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ValueError(f"sample_rate: expected a positive integer number of Hz, got {rate!r}")
    return rate


def _check_speech_rate(rate: int, system_rate: int) -> None:
    """A ``ValueError`` if audio at ``rate`` (Hz), to be resampled to ``system_rate``, is below
    `MIN_SAMPLE_RATE`."""
    if rate < MIN_SAMPLE_RATE:
        raise ValueError(
            f"a sample rate below {MIN_SAMPLE_RATE} Hz is not speech audio; expected audio at "
            f"{MIN_SAMPLE_RATE} Hz or more (this system's is {system_rate} Hz), or a WAV header "
            "with its true SampleRate"
        )


def _feature_config(saved: dict) -> FeatureConfig:
    """The saved feature settings; systems saved when ``cmvn`` was a flag (per-utterance mean
    normalisation, or none) load with its meaning."""
    if isinstance(saved.get("cmvn"), bool):
        saved = {**saved, "cmvn": "utterance" if saved["cmvn"] else "none", "cmvn_variance": False}
    return FeatureConfig(**saved)


class Recognizer:
    """A speech system ready to decode: ``recognize`` turns waveforms into words,
    ``decode`` turns features into word indices.

    Saved with `save` and read back with `load` (see `hybrid.saved`).

    Args:
        saved: The system as plain data (`system_dict`, or read by `load`); to be saved, with
            the ``"features"`` (a `FeatureConfig` as a dict) and ``"sample_rate"`` (Hz) of
            the recordings it was trained on.
        device: Where a network scores frames (the GMM, the graph search and the CTC
            search stay on the CPU).

    Raises:
        ValueError: if ``saved["sample_rate"]`` is neither ``None`` nor a positive integer.
    """

    def __init__(self, saved: dict, device: str | torch.device = "cpu") -> None:
        self.system = saved
        self.kind = saved["kind"]
        self.topology = topology_from_dict(saved["topology"])
        self.features = None if saved["features"] is None else _feature_config(saved["features"])
        rate = saved.get("sample_rate", LEGACY_SAMPLE_RATE)
        #: The rate (Hz) of the recordings the system was trained on (``None``: not saved).
        self.sample_rate = None if rate is None else _sample_rate(rate)
        self.grammar = saved["grammar"]
        scales = saved["scales"]
        model = saved["model"]
        num_words = len(self.topology.words)
        if self.kind in ("gmm", "dnn", "bilstm"):
            grammar = task_grammar(self.grammar, num_words, scales["word_penalty"])
            self.graph = decoding_graph(self.topology, grammar, model["self_loop"])
        if self.kind == "gmm":
            state = model["emissions"]
            self.scorer = GMMEmissions(state["log_weights"].exp(), state["means"], state["covars"])
        else:
            self.network = build(AcousticConfig(**model["config"]))
            self.network.load_state_dict(model["weights"])
            self.network.to(device).eval()
            if self.kind in ("dnn", "bilstm"):
                self.priors = ScaledPosteriors(
                    model["log_priors"], scales["acoustic_scale"], scales["prior_scale"]
                )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the system with its feature settings and sample rate as plain data,
        atomically, stamped ``"speech system"``; read back with `load`.

        Raises:
            ValueError: if the system has no feature settings or sample rate (it could not
                recognize audio).
        """
        if self.features is None or self.sample_rate is None:
            raise ValueError("this system has no feature settings and rate to be saved with")
        saved = {**self.system, "features": asdict(self.features), "sample_rate": self.sample_rate}
        save_atomic({**saved, **stamp("speech system")}, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Recognizer:
        """Read a system written by `save` (a ``models/<task>-<system>-seed<N>.pt``, or
        ``<task>-gmm.pt``, of a run), its network on ``device`` in evaluation mode.

        Raises:
            ValueError: naming ``path``, when it is missing, not a saved speech system
                (truncated, another format, or another kind of model or a checkpoint: see
                `hybrid.saved.load_saved`).
        """
        return cls(load_saved(path, "speech system"), device)

    def recognize(self, waveforms: Iterable[tuple[Tensor, int]]) -> list[tuple[str, ...]]:
        """Words spoken in each ``(waveform (N,), sample_rate)``.

        A waveform at another rate than the system's (`sample_rate`, that of its training
        recordings) is resampled to it (`hybrid.speech.audio.resample`) with a
        ``UserWarning`` that says so, once per rate: features at another rate are not those
        the system learned (their frames and mel bins span other samples and frequencies).
        Audio below the system's rate lacks the band above its Nyquist frequency; expect
        more errors. Audio below `MIN_SAMPLE_RATE` (1000 Hz) is refused, not resampled: it is
        not speech audio.

        Under per-speaker normalisation (``cmvn="speaker"``) the waveforms are taken as one
        speaker's: their statistics are pooled (recognize one at a time to normalise each on
        its own).

        Raises:
            ValueError: if the system was not saved with its feature settings, or naming
                ``waveforms[i]`` when a waveform is not a 1-D float tensor of finite samples
                at least one 25 ms frame long, or its rate is not a positive integer, or
                is another rate than the system's below `MIN_SAMPLE_RATE`.
        """
        return list(self.recognize_stream(waveforms))

    def recognize_stream(
        self,
        waveforms: Iterable[tuple[Tensor, int]],
        budget: int = FRAME_BUDGET,
        window: int = WINDOW,
    ) -> Iterator[tuple[str, ...]]:
        """`recognize`, lazily: decoded as `decode_stream` does, the words of each window of
        utterances yielded in order as it is done. Under ``cmvn="speaker"`` every waveform is
        read first (their pooled statistics normalise each); otherwise one window at a time.

        Raises:
            ValueError: a system saved without its feature settings (at once).
        """
        words = self.topology.words
        decoded = self.decode_stream(self._features(waveforms), budget, window)
        return (tuple(words[w] for w in h) for h in decoded)

    def transcribe(self, waveforms: Iterable[tuple[Tensor, int]]) -> list[Transcript]:
        """The words of each ``(waveform (N,), sample_rate)`` with their times, and over
        phone HMMs the phones too: each utterance's best path through the decoding graph
        (audio taken as `recognize` takes it).

        Raises:
            ValueError: a system that decodes without an HMM (``rnn``, ``ctc``), or as
                `recognize`.
        """
        self._needs_hmm("transcribe")

        def batch(features: list[Tensor]) -> list[Transcript]:
            decoded = decode_paths(self.scaled_scores(features), self.graph)
            return [self._transcript(words, path) for words, path in decoded]

        return list(map_in_batches(batch, self._features(waveforms), len, FRAME_BUDGET))

    def nbest(
        self, waveforms: Iterable[tuple[Tensor, int]], n: int
    ) -> list[list[tuple[tuple[str, ...], float]]]:
        """The ``n`` best word sequences of each waveform through the decoding graph, best
        first, each with the score of its best path (`hybrid.structured.graph_nbest`:
        exact); fewer when the graph holds fewer.

        Raises:
            ValueError: a system without an HMM, ``n`` below 1, or as `recognize`.
        """
        self._needs_hmm("nbest")
        words = self.topology.words

        def batch(features: list[Tensor]) -> list[list[tuple[tuple[str, ...], float]]]:
            scores, lengths = pad_features(self.scaled_scores(features))
            found = graph_nbest(scores, self.graph, n, lengths)
            return [
                [
                    (tuple(words[w] for w in labels[:count].tolist()), float(score))
                    for labels, count, score in zip(*row, strict=True)
                    if score > -torch.inf
                ]
                for row in zip(found.labels, found.label_lengths, found.scores, strict=True)
            ]

        return list(map_in_batches(batch, self._features(waveforms), len, FRAME_BUDGET))

    def align(
        self, waveforms: Iterable[tuple[Tensor, int]], transcripts: Sequence[Sequence[str]]
    ) -> list[Transcript]:
        """Forced alignment: where each word of each transcript (and over phone HMMs each
        phone) lies in its waveform, silence allowed before, between and after the words.

        Raises:
            ValueError: a system without an HMM, a word the system does not know (naming
                ``transcripts[i]``), an utterance too short for its words, or as `recognize`.
        """
        self._needs_hmm("align")
        index = {word: i for i, word in enumerate(self.topology.words)}
        ids = []
        for i, words in enumerate(transcripts):
            unknown = [w for w in words if w not in index]
            if unknown:
                raise ValueError(
                    f"transcripts[{i}]: the word {unknown[0]!r} is not one of the system's "
                    f"{len(index)} words"
                )
            ids.append([index[w] for w in words])
        loops = self.system["model"]["self_loop"]

        def batch(pairs: list[tuple[Tensor, list[int]]]) -> list[Transcript]:
            features, said = zip(*pairs, strict=True)
            paths = forced_alignment(self.scaled_scores(list(features)), said, self.topology, loops)
            return [self._transcript(w, path) for w, path in zip(said, paths, strict=True)]

        pairs = zip(self._features(waveforms), ids, strict=True)
        return list(map_in_batches(batch, pairs, lambda pair: len(pair[0]), FRAME_BUDGET))

    def _needs_hmm(self, what: str) -> None:
        if self.kind not in ("gmm", "dnn", "bilstm"):
            raise ValueError(
                f"{what} needs an HMM system (gmm, dnn or bilstm kinds); this one is "
                f"{self.kind!r}, which has no states to place words in time"
            )

    def _transcript(self, words: Sequence[int], path: Alignment) -> Transcript:
        """The words of ``path`` (and its phones over phone HMMs) with their times."""
        timed = tuple(
            Span(self.topology.words[w], boundary_time(first), boundary_time(end))
            for w, (first, end) in zip(words, word_spans(path, self.topology), strict=True)
        )
        if not isinstance(self.topology, PhoneTopology):
            return Transcript(timed, ())
        phones = tuple(
            Span(self.topology.phones[p], boundary_time(first), boundary_time(end))
            for p, first, end in phone_segments(path.pdfs, self.topology)
        )
        return Transcript(timed, phones)

    def _features(self, waveforms: Iterable[tuple[Tensor, int]]) -> Iterator[Tensor]:
        """Each waveform's normalised features (pooled per speaker when the system's
        normalisation is per speaker: all waveforms read first)."""
        if self.features is None or self.sample_rate is None:
            raise ValueError("this system was not saved with its feature settings and rate")
        raw = self._waveform_features(waveforms)
        if self.features.cmvn == "speaker":
            raw = list(raw)
            return iter(normalise_features(raw, ["speaker"] * len(raw), self.features))
        return (normalise_features([f], ["speaker"], self.features)[0] for f in raw)

    def _waveform_features(self, waveforms: Iterable[tuple[Tensor, int]]) -> Iterator[Tensor]:
        """`waveform_features` of each ``(waveform, rate)`` at the system's rate, resampled
        where the rate differs (one warning per rate); errors name ``waveforms[i]``."""
        noted: set[int] = set()
        for index, (waveform, rate) in enumerate(waveforms):
            try:
                if _sample_rate(rate) != self.sample_rate:
                    _check_speech_rate(rate, self.sample_rate)
                    if rate not in noted:
                        warnings.warn(self._resampling_note(rate), UserWarning, stacklevel=2)
                        noted.add(rate)
                    waveform = resample(waveform, rate, self.sample_rate)
                features = waveform_features(waveform, self.sample_rate, self.features)
            except ValueError as error:
                raise ValueError(f"waveforms[{index}] ({rate!r} Hz): {error}") from None
            yield features

    def _resampling_note(self, rate: int) -> str:
        """What `recognize` says when it resamples audio at ``rate`` (Hz)."""
        note = f"resampled audio at {rate} Hz to {self.sample_rate} Hz, the rate this system "
        note += "was trained at"
        if rate < self.sample_rate:
            note += f"; the audio has nothing above {rate / 2:g} Hz: expect more errors"
        return note

    def scaled_scores(self, features: list[Tensor]) -> list[Tensor]:
        """An HMM system's frame scores per utterance ``(T_i, P)``: GMM log-likelihoods, or a
        hybrid network's log-posteriors with the priors divided out."""
        if self.kind == "gmm":
            return frame_scores(self.scorer, features)
        if self.kind not in ("dnn", "bilstm"):
            raise ValueError(f"scaled_scores needs an HMM system, this one is {self.kind!r}")
        return [self.priors(p[None])[0] for p in log_posteriors(self.network, features)]

    def decode(self, features: Iterable[Tensor]) -> list[tuple[int, ...]]:
        """Word indices of each utterance's features ``(T_i, D)``."""
        return list(self.decode_stream(features))

    def decode_stream(
        self, features: Iterable[Tensor], budget: int = FRAME_BUDGET, window: int = WINDOW
    ) -> Iterator[tuple[int, ...]]:
        """`decode`, lazily and in bounded memory: ``window`` utterances at a time, sorted by
        length, in batches of at most ``budget`` padded frames (a longer utterance alone),
        the results in order (see `hybrid.batching.map_in_batches`)."""
        return map_in_batches(self._decode_batch, features, len, budget, window)

    def _decode_batch(self, features: list[Tensor]) -> list[tuple[int, ...]]:
        """Word indices of one batch of utterances' features ``(T_i, D)``."""
        if self.kind in ("gmm", "dnn", "bilstm"):
            return decode(self.scaled_scores(features), self.graph)
        if self.kind == "ctc":
            return self._decode_ctc(features)
        if self.grammar == "isolated":
            device = next(self.network.parameters()).device
            with torch.no_grad():
                x, lengths = pad_features(features)
                logits = self.network(x.to(device), lengths.to(device))
                return [(int(w),) for w in logits.argmax(-1)]
        # Naive collapsing of the frame classifier's labels is greedy CTC decoding with
        # silence (class num_words) as the blank: repeats merged, silence dropped.
        log_probs, lengths = pad_features(log_posteriors(self.network, features))
        labels, counts, _ = greedy_decode(log_probs, lengths, blank=len(self.topology.words))
        return label_sequences(labels, counts)

    def _decode_ctc(self, features: list[Tensor]) -> list[tuple[int, ...]]:
        """Isolated words: the word whose one-symbol target has the highest CTC probability
        (exact under the one-word grammar); strings: prefix beam search."""
        blank = self.system["model"]["blank"]
        log_probs, lengths = pad_features(log_posteriors(self.network, features))
        if self.grammar != "isolated":
            best = prefix_beam_search(log_probs, lengths, beam=CTC_BEAM, blank=blank, nbest=1)
            return label_sequences(best.labels[:, 0], best.label_lengths[:, 0])
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
