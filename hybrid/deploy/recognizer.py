"""`ExportedRecognizer`: a speech system exported by ``hybrid export``, run without torch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..batching import WINDOW, map_in_batches
from . import check_keys, runner

__all__ = ["ExportedRecognizer"]

# Kaldi floors a variance at 1e-20; `hybrid.speech.features` refuses a smaller one.
_MIN_VARIANCE = 1e-20


def _frames(item: tuple) -> int:
    """The frames of a ``(features, statistics)`` item."""
    return len(item[0])


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
        self, waveforms: Iterable[tuple[object, int]], window: int = WINDOW
    ) -> Iterator[tuple[str, ...]]:
        """The words of each ``(samples, sample_rate)``, in order, decoded ``window``
        recordings at a time in batches of at most the exported frame budget; ``samples`` is
        a 1-D array of finite samples (a numpy array, a list, a tensor).

        Under per-speaker normalisation (``cmvn="speaker"``) the recordings are taken as one
        speaker's, as `Recognizer.recognize` takes them: every one is read first, and their
        pooled statistics normalise each.

        Raises:
            ValueError: naming ``waveforms[i]``: not 1-D, not finite, shorter than one 25 ms
                frame, or at another rate than the system's; and, under variance
                normalisation, a feature dimension constant over the recordings.
        """
        raw = (self._frame_features(i, *item) for i, item in enumerate(waveforms))
        if self.cmvn == "speaker":
            raw = list(raw)
            if raw:
                frames = float(sum(len(f) for f, _ in raw))
                pooled = np.sum([sums for _, (_, sums) in raw], axis=0)
                self._check_variance(frames, pooled, "the recordings")
                raw = [(f, (frames, pooled)) for f, _ in raw]
        elif self.cmvn == "utterance":
            raw = (self._own_statistics(i, item) for i, item in enumerate(raw))
        return map_in_batches(self._decode_batch, raw, _frames, self.budget, window)

    @property
    def budget(self) -> int:
        """Most padded frames decoded together."""
        return self.description["frame_budget"]

    def _frame_features(self, index: int, samples: object, rate: int) -> tuple:
        """``(features (T, D), statistics)`` of one recording, statistics ``(frames, (2, D)
        sums)``; errors name ``waveforms[index]``."""
        where = f"waveforms[{index}] ({rate!r} Hz)"
        if isinstance(rate, bool) or not isinstance(rate, int) or rate != self.sample_rate:
            raise ValueError(
                f"{where}: this system takes audio at {self.sample_rate} Hz; resample it first "
                "(a saved system, not exported, resamples)"
            )
        waveform = np.asarray(samples, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"{where}: expected one channel of samples (N,), got {waveform.shape}")
        if waveform.shape[0] < self.description["window_samples"]:
            raise ValueError(
                f"{where}: {waveform.shape[0]} samples is shorter than one 25 ms frame "
                f"({self.description['window_samples']} samples)"
            )
        if not np.isfinite(waveform).all():
            raise ValueError(f"{where}: the samples hold NaN or infinity")
        values = self._features({"waveform": waveform})
        features, sums = values["features"], values["statistics"]
        return features, (float(len(features)), sums)

    def _own_statistics(self, index: int, item: tuple) -> tuple:
        """``item``, its statistics checked for variance normalisation."""
        self._check_variance(*item[1], f"waveforms[{index}]")
        return item

    def _check_variance(self, frames: float, sums: np.ndarray, what: str) -> None:
        """A ``ValueError`` if a dimension is constant over ``what`` (its variance below
        Kaldi's floor) under variance normalisation."""
        if not self.variance:
            return
        mean = sums[0] / frames
        flat = np.flatnonzero(sums[1] / frames - mean * mean < _MIN_VARIANCE).tolist()
        if flat:
            raise ValueError(
                f"{what}: variance normalisation is undefined: feature dimensions {flat} are "
                f"constant (variance < {_MIN_VARIANCE})"
            )

    def _decode_batch(self, items: list[tuple]) -> list[tuple[str, ...]]:
        """The words of one batch of ``(features, statistics)``."""
        lengths = np.array([len(f) for f, _ in items], dtype=np.int64)
        dim = items[0][0].shape[1]
        features = np.zeros((len(items), int(lengths.max()), dim), dtype=np.float32)
        for row, (frames, _) in enumerate(items):
            features[row, : len(frames)] = frames
        if self.cmvn == "none":
            frames = np.ones(len(items))
            statistics = np.zeros((len(items), 2, dim))
        else:
            frames = np.array([count for _, (count, _) in items])
            statistics = np.stack([sums for _, (_, sums) in items])
        outputs = self._run(
            {"features": features, "lengths": lengths, "frames": frames, "statistics": statistics}
        )
        return [
            tuple(self.words[w] for w in row[:count])
            for row, count in zip(
                outputs["words"].tolist(), outputs["word_counts"].tolist(), strict=True
            )
        ]
