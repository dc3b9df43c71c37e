"""Exported speech systems recognise what the systems they came from recognise.

The oracle is the saved system itself (`Recognizer.recognize`, eager PyTorch): its export to
TorchScript and to ONNX, run by `hybrid.deploy` (onnxruntime, no torch), must give every
recording the same words. Systems of every kind (GMM-HMM, hybrid DNN-HMM and BiLSTM-HMM,
the pure RNN, CTC) on isolated words and on strings are trained briefly on the synthetic
corpus; on real data, systems trained briefly on part of FSDD recognise every FSDD test
recording (the comparison needs a trained system's scores, not a good one).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from realdata import real_corpus
from test_speech_pipeline import TINY

from hybrid import deploy
from hybrid.cli import main
from hybrid.saved import load_saved
from hybrid.speech.audio import read_wav, write_wav
from hybrid.speech.corpus import (
    connected_strings,
    isolated_utterances,
    synthetic_recordings,
    synthetic_split,
)
from hybrid.speech.experiment import run_speech
from hybrid.speech.export import export_recognizer
from hybrid.speech.fsdd import DIGITS, official_split, read_fsdd
from hybrid.speech.recognizer import Recognizer

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated", "ignore::torch.jit.TracerWarning"
)
pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")


def _exported(recognizer: Recognizer, fmt: str, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_recognizer(recognizer, fmt, out)
    return deploy.load(out)


def _by_speaker(utterances) -> list[list]:
    """The utterances grouped by speaker, in order of first appearance: a speaker's
    recordings are recognised together (they share their statistics)."""
    groups: dict[str, list] = {}
    for utterance in utterances:
        groups.setdefault(utterance.speaker, []).append(utterance)
    return list(groups.values())


def _assert_same_words(recognizer: Recognizer, exported, utterances) -> None:
    """Every utterance, one speaker at a time, gets the same words from both."""
    for group in _by_speaker(utterances):
        expected = recognizer.recognize([(u.waveform, u.sample_rate) for u in group])
        got = exported.recognize([(u.waveform.numpy(), u.sample_rate) for u in group])
        assert got == expected, group[0].speaker


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    train, test = synthetic_split(synthetic_recordings(speakers=2, takes=7, seed=1))
    run_dir = tmp_path_factory.mktemp("asr")
    run_speech(
        train,
        test,
        run_dir,
        ("isolated", "strings"),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    strings = connected_strings(test, TINY.test_strings, TINY.string_seed + 1)
    return run_dir / "models", {"isolated": test, "strings": strings}


# TorchScript for every system; ONNX for the decoders the FSDD test does not export (its
# export takes seconds per system): graph Viterbi over strings, greedy collapsing of the
# pure RNN's frames and its utterance classifier.
CASES = [
    *[("torchscript", t, s) for t in ("isolated", "strings") for s in ("gmm", "dnn", "bilstm")],
    *[("torchscript", t, s) for t in ("isolated", "strings") for s in ("rnn", "ctc")],
    ("onnx", "strings", "dnn"),
    ("onnx", "strings", "rnn"),
    ("onnx", "strings", "ctc"),
    ("onnx", "isolated", "rnn"),
]


@pytest.mark.parametrize(("fmt", "task", "system"), CASES)
def test_exported_system_recognises_like_the_system(fmt, task, system, synthetic_run, tmp_path):
    models, utterances = synthetic_run
    name = f"{task}-gmm.pt" if system == "gmm" else f"{task}-{system}-seed0.pt"
    recognizer = Recognizer.load(models / name)
    exported = _exported(recognizer, fmt, tmp_path / f"system.{fmt}")
    _assert_same_words(recognizer, exported, utterances[task])


def test_fsdd_test_recordings_are_recognised_identically(tmp_path):
    """Every FSDD test recording (the official split), one speaker at a time, by a hybrid
    DNN-HMM, CTC and the GMM-HMM trained on a tenth of the training recordings."""
    train, test = official_split(read_fsdd(real_corpus("fsdd")))
    run_dir = tmp_path / "fsdd"
    run_speech(
        isolated_utterances(train[::10]),
        isolated_utterances(test),
        run_dir,
        ("isolated",),
        systems=("gmm", "dnn", "ctc"),
        settings=TINY,
        words=DIGITS,
    )
    utterances = isolated_utterances(test)
    for fmt, name in [
        ("onnx", "isolated-dnn-seed0.pt"),
        ("onnx", "isolated-ctc-seed0.pt"),
        ("torchscript", "isolated-gmm.pt"),
    ]:
        recognizer = Recognizer.load(run_dir / "models" / name)
        exported = _exported(recognizer, fmt, tmp_path / f"{name}.{fmt}")
        _assert_same_words(recognizer, exported, utterances)


@pytest.mark.parametrize("cmvn", ["utterance", "none"])
def test_exported_systems_normalise_as_the_systems(cmvn, synthetic_run, tmp_path):
    """Per-utterance normalisation and none (the systems above normalise per speaker): the
    scores of a system trained under another normalisation, but the same in both."""
    models, utterances = synthetic_run
    saved = load_saved(models / "strings-dnn-seed0.pt", "speech system")
    recognizer = Recognizer({**saved, "features": {**saved["features"], "cmvn": cmvn}})
    exported = _exported(recognizer, "torchscript", tmp_path / "dnn.pt")
    group = utterances["strings"]
    expected = recognizer.recognize([(u.waveform, u.sample_rate) for u in group])
    assert exported.recognize([(u.waveform.numpy(), np.int64(u.sample_rate)) for u in group]) == (
        expected
    )


def test_a_recording_too_short_for_the_graph_is_refused_alike(synthetic_run, tmp_path):
    models, utterances = synthetic_run
    recognizer = Recognizer.load(models / "isolated-dnn-seed0.pt")
    exported = _exported(recognizer, "torchscript", tmp_path / "dnn.pt")
    spoken = utterances["isolated"][0]
    short = spoken.waveform[: int(0.03 * spoken.sample_rate)]  # one frame
    with pytest.raises(ValueError, match="no path"):
        recognizer.recognize([(spoken.waveform, spoken.sample_rate), (short, spoken.sample_rate)])
    with pytest.raises(ValueError, match="waveforms\\[1\\]: no path through the decoding graph"):
        exported.recognize([(w.numpy(), spoken.sample_rate) for w in (spoken.waveform, short)])


def test_recognize_command_reads_an_exported_system_without_torch(synthetic_run, tmp_path, capsys):
    models, utterances = synthetic_run
    model = models / "strings-dnn-seed0.pt"
    assert main(["export", "--model", str(model), "--out", str(tmp_path / "dnn.onnx")]) == 0
    assert (tmp_path / "dnn.features.onnx").is_file()
    capsys.readouterr()
    files = []
    for i, utterance in enumerate(utterances["strings"][:3]):
        files.append(tmp_path / f"{i}.wav")
        write_wav(files[-1], utterance.waveform, utterance.sample_rate)
    paths = [str(f) for f in files]
    assert main(["recognize", "--model", str(model), *paths]) == 0
    saved = capsys.readouterr().out
    assert main(["recognize", "--model", str(tmp_path / "dnn.onnx"), *paths]) == 0
    assert capsys.readouterr().out == saved
    samples, rate = read_wav(files[0])
    np.save(tmp_path / "samples.npy", samples.numpy())
    script = (
        "import sys\n"
        "import numpy as np\n"
        "from hybrid import deploy\n"
        f"system = deploy.load({str(tmp_path / 'dnn.onnx')!r})\n"
        f"words = system.recognize([(np.load({str(tmp_path / 'samples.npy')!r}), {rate})])\n"
        "assert 'torch' not in sys.modules, 'hybrid.deploy imported torch'\n"
        "print(' '.join(words[0]))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"{files[0]}\t{run.stdout.strip()}" == saved.splitlines()[0]


def test_exported_system_errors_are_named(synthetic_run, tmp_path, capsys):
    models, utterances = synthetic_run
    recognizer = Recognizer.load(models / "isolated-dnn-seed0.pt")
    exported = _exported(recognizer, "torchscript", tmp_path / "dnn.pt")
    waveform, rate = utterances["isolated"][0].waveform.numpy(), recognizer.sample_rate
    for samples, at, message in [
        (waveform, rate // 2, f"waveforms\\[0\\].*takes audio at {rate} Hz"),
        (waveform, float(rate), "the rate must be an integer number of Hz"),
        ((waveform * 32768).astype(np.int16), rate, "float samples .* int16"),
        (np.stack([waveform, waveform]), rate, "one channel of float samples"),
        (waveform[:10], rate, "shorter than one 25 ms frame"),
        (np.full_like(waveform, np.nan), rate, "NaN or infinity"),
        (np.zeros_like(waveform), rate, "variance normalisation is undefined"),
    ]:
        with pytest.raises(ValueError, match=message):
            exported.recognize([(samples, at)])
    with pytest.raises(ValueError, match="expected an exported tagger"):
        deploy.load(tmp_path / "dnn.pt", kind="tagger")
    assert main(["tag", "--model", str(tmp_path / "dnn.pt"), "a flight"]) == 2
    assert "is an exported recognizer; expected an exported tagger" in capsys.readouterr().err
    model = str(models / "isolated-dnn-seed0.pt")
    assert main(["export", "--model", model, "--k", "2"]) == 2
    assert "--k: n-best taggings are exported with taggers" in capsys.readouterr().err
