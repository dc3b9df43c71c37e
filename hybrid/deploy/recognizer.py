"""`ExportedRecognizer`: a speech system exported by ``hybrid export``, run without torch."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..batching import WINDOW, map_in_batches
from ..speech.statistics import MIN_VARIANCE
from . import check_keys, runner

__all__ = ["ExportedRecognizer"]


@dataclass(frozen=True)
class _Recording:
    """One recording's place among the inputs, its features ``(T, D)`` before normalisation,
    and the statistics it is normalised with: a frame count and ``(2, D)`` sums of the
    features and of their squares (its own, or those of all the recordings)."""

    index: int
    features: np.ndarray
    frames: float
    sums: np.ndarray


def _length(recording: _Recording) -> int:
    """The frames of ``recording``'s features."""
    return len(recording.features)


class ExportedRecognizer:
    """A speech system exported by ``hybrid export`` (``F``, its front end
    ``F.features.<suffix>`` and ``F.json``): `recognize` returns what `Recognizer.recognize`
    returns, the words spoken in each recording.

    Audio must come at the system's rate (`sample_rate`): this runtime does not resample
    (`hybrid.speech.Recognizer` does, with a warning).

    Args:
        path: The exported recognizer.
        description: Its description (`hybrid.deploy.describe`).
        threads: Threads of an ONNX model (``None``: onnxruntime's default).
    """

    def __init__(self, path: Path, description: dict, threads: int | None = None):
        self.path = Path(path)
        check_keys(
            self.path,
            description,
            {
                "system": str,
                "words": list,
                "sample_rate": int,
                "features": dict,
                "frontend": str,
                "frontend_inputs": list,
                "frontend_outputs": list,
                "frame_budget": int,
                "window_samples": int,
            },
        )
        check_keys(self.path, description["features"], {"cmvn": str, "cmvn_variance": bool})
        self.description = description
        self.words = tuple(description["words"])
        #: The rate (Hz) of the audio the system takes.
        self.sample_rate = description["sample_rate"]
        self.cmvn = description["features"]["cmvn"]
        self.variance = description["features"]["cmvn_variance"]
        frontend = {
            **description,
            "inputs": description["frontend_inputs"],
            "outputs": description["frontend_outputs"],
        }
        self._features = runner(self.path.with_name(description["frontend"]), frontend, threads)
        self._run = runner(self.path, description, threads)

    def recognize(self, waveforms: Iterable[tuple[object, int]]) -> list[tuple[str, ...]]:
        """The words spoken in each ``(samples, sample_rate)`` (`recognize_stream`, all at
        once)."""
        return list(self.recognize_stream(waveforms))

    def recognize_stream(
        self,
        waveforms: Iterable[tuple[object, int]],
        budget: int | None = None,
        window: int = WINDOW,
    ) -> Iterator[tuple[str, ...]]:
        """The words of each ``(samples, sample_rate)``, in order, decoded ``window``
        recordings at a time in batches of at most ``budget`` padded frames (``None``: the
        budget of `hybrid.speech.Recognizer`, recorded at export); ``samples`` is a 1-D
        array of finite float samples (a numpy array, a tensor).

        Under per-speaker normalisation (``cmvn="speaker"``) the recordings are taken as one
        speaker's, as `Recognizer.recognize` takes them: every one is read first, and their
        pooled statistics normalise each.

        Raises:
            ValueError: naming ``waveforms[i]``: not 1-D float samples, not finite, shorter
                than one 25 ms frame, at another rate than the system's, or too short for
                any path through the decoding graph; and, under variance normalisation, a
                feature dimension constant over the recordings normalised together.
        """
        recordings = (self._recording(i, *item) for i, item in enumerate(waveforms))
        if self.cmvn == "speaker":
            recordings = list(recordings)
            if recordings:
                frames = float(sum(r.frames for r in recordings))
                pooled = np.sum([r.sums for r in recordings], axis=0)
                self._check_variance(frames, pooled, "the recordings")
                recordings = [replace(r, frames=frames, sums=pooled) for r in recordings]
        elif self.cmvn == "utterance":
            recordings = (self._checked(r) for r in recordings)
        budget = self.description["frame_budget"] if budget is None else budget
        return map_in_batches(self._decode_batch, recordings, _length, budget, window)

    def _recording(self, index: int, samples: object, rate: object) -> _Recording:
        """The features of ``waveforms[index]`` and their statistics; errors name it."""
        where = f"waveforms[{index}] ({rate!r} Hz)"
        try:
            rate = operator.index(rate)
        except TypeError:
            raise ValueError(f"{where}: the rate must be an integer number of Hz") from None
        if rate != self.sample_rate:
            raise ValueError(
                f"{where}: this system takes audio at {self.sample_rate} Hz; resample it first "
                "(a saved system, not exported, resamples)"
            )
        waveform = np.asarray(samples)
        if waveform.ndim != 1 or waveform.dtype.kind != "f":
            raise ValueError(
                f"{where}: expected one channel of float samples (N,), got shape "
                f"{waveform.shape} of {waveform.dtype} (integer PCM: divide by 32768)"
            )
        if waveform.shape[0] < self.description["window_samples"]:
            raise ValueError(
                f"{where}: {waveform.shape[0]} samples is shorter than one 25 ms frame "
                f"({self.description['window_samples']} samples)"
            )
        if not np.isfinite(waveform).all():
            raise ValueError(f"{where}: the samples hold NaN or infinity")
        values = self._features({"waveform": waveform.astype(np.float32)})
        features = values["features"]
        return _Recording(index, features, float(len(features)), values["statistics"])

    def _checked(self, recording: _Recording) -> _Recording:
        """``recording``, its own statistics checked for variance normalisation."""
        self._check_variance(recording.frames, recording.sums, f"waveforms[{recording.index}]")
        return recording

    def _check_variance(self, frames: float, sums: np.ndarray, what: str) -> None:
        """A ``ValueError`` if a dimension is constant over ``what`` (its variance below
        Kaldi's floor) under variance normalisation."""
        if not self.variance:
            return
        mean = sums[0] / frames
        flat = np.flatnonzero(sums[1] / frames - mean * mean < MIN_VARIANCE).tolist()
        if flat:
            raise ValueError(
                f"{what}: variance normalisation is undefined: feature dimensions {flat} are "
                f"constant (variance < {MIN_VARIANCE})"
            )

    def _decode_batch(self, recordings: list[_Recording]) -> list[tuple[str, ...]]:
        """The words of one batch of recordings."""
        lengths = np.array([_length(r) for r in recordings], dtype=np.int64)
        dim = recordings[0].features.shape[1]
        features = np.zeros((len(recordings), int(lengths.max()), dim), dtype=np.float32)
        for row, recording in enumerate(recordings):
            features[row, : _length(recording)] = recording.features
        outputs = self._run(
            {
                "features": features,
                "lengths": lengths,
                "frames": np.array([r.frames for r in recordings]),
                "statistics": np.stack([r.sums for r in recordings]),
            }
        )
        for recording, found in zip(recordings, outputs["found"].tolist(), strict=True):
            if not found:
                raise ValueError(
                    f"waveforms[{recording.index}]: no path through the decoding graph: "
                    f"{_length(recording)} frames are too few for the words of this system"
                )
        rows = zip(outputs["words"].tolist(), outputs["word_counts"].tolist(), strict=True)
        return [tuple(self.words[w] for w in row[:count]) for row, count in rows]
