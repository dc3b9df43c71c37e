"""The speech pipeline: acoustic models, training with resume, the comparison run folder, the
saved systems and the command line."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from realdata import real_corpus

from hybrid import cli, files
from hybrid.ctc import ctc_loss, greedy_decode
from hybrid.speech import experiment
from hybrid.speech.acoustic import AcousticConfig, build, splice_batch
from hybrid.speech.audio import write_wav
from hybrid.speech.corpus import (
    FeatureConfig,
    connected_strings,
    extract,
    isolated_utterances,
    synthetic_recordings,
    synthetic_split,
)
from hybrid.speech.decoder import decode, frame_scores
from hybrid.speech.experiment import ExperimentSettings, run_speech
from hybrid.speech.features import pad_features, splice
from hybrid.speech.fsdd import DIGITS, read_fsdd
from hybrid.speech.gmm import flat_start
from hybrid.speech.graph import decoding_graph
from hybrid.speech.recognizer import Recognizer
from hybrid.speech.systems import SystemSettings
from hybrid.speech.topology import Topology, isolated_grammar
from hybrid.speech.train import AcousticTask, AcousticTrainConfig, fit_acoustic

TINY = ExperimentSettings(
    systems=SystemSettings(
        word_states=3,
        mixtures=1,
        gmm_iterations=2,
        viterbi_iterations=1,
        dnn={"hidden": 16, "layers": 1, "context": 1},
        bilstm={"hidden": 8, "layers": 1},
        rnn={"hidden": 8, "layers": 1},
        ctc={"hidden": 8, "layers": 1},
        training=AcousticTrainConfig(epochs=2, batch_size=8),
        ctc_training=AcousticTrainConfig(epochs=2, batch_size=8, lr=3e-3),
    ),
    train_strings=12,
    test_strings=4,
    dev_strings=3,
)


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_split(synthetic_recordings(speakers=2, takes=7, seed=1))


def _features(generator, lengths, dim=5):
    return [torch.randn(t, dim, generator=generator) for t in lengths]


def test_splice_batch_equals_splice_of_each_utterance():
    generator = torch.Generator().manual_seed(0)
    features = _features(generator, [7, 1, 4])
    padded, lengths = pad_features(features)
    spliced = splice_batch(padded, lengths, context=2)
    for b, f in enumerate(features):
        torch.testing.assert_close(spliced[b, : len(f)], splice(f, 2))


@pytest.mark.parametrize("kind", ["dnn", "bilstm", "classifier"])
def test_models_do_not_see_padding(kind):
    generator = torch.Generator().manual_seed(1)
    features = _features(generator, [9, 3, 6])
    model = build(AcousticConfig(kind=kind, input_dim=5, num_outputs=4, hidden=8, context=2))
    model.set_normaliser(features)
    model.eval()
    padded, lengths = pad_features(features)
    batch = model(padded, lengths)
    for b, f in enumerate(features):
        alone = model(f[None], torch.tensor([len(f)]))[0]
        torch.testing.assert_close(batch[b, : len(f)] if kind != "classifier" else batch[b], alone)
    with pytest.raises(ValueError, match=r"features must be \(B, T, D = 5\)"):
        model(torch.zeros(1, 3, 4), torch.tensor([3]))


def test_training_resumes_exactly_after_an_interruption(tmp_path, monkeypatch):
    generator = torch.Generator().manual_seed(2)
    features = _features(generator, [5, 8, 6, 7, 9, 4])
    targets = [torch.randint(0, 3, (len(f),), generator=generator) for f in features]
    config = AcousticTrainConfig(epochs=3, batch_size=2, seed=3)

    def model():
        torch.manual_seed(0)
        return build(AcousticConfig(kind="dnn", input_dim=5, num_outputs=3, hidden=8, context=1))

    straight = model()
    expected = fit_acoustic(straight, features, targets, config)

    from hybrid.training import engine

    saves = []

    def interrupted(obj, path):
        files.save_atomic(obj, path)
        saves.append(path)
        if len(saves) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_atomic", interrupted)
    checkpoint = tmp_path / "dnn.ckpt"
    with pytest.raises(KeyboardInterrupt):
        fit_acoustic(model(), features, targets, config, checkpoint)
    monkeypatch.setattr(engine, "save_atomic", files.save_atomic)
    resumed = model()
    history = fit_acoustic(resumed, features, targets, config, checkpoint)
    assert len(history) == 3 and history.loss == expected.loss
    assert history.valid_accuracy == expected.valid_accuracy
    assert history.valid_loss == expected.valid_loss
    assert history.best_epoch == expected.best_epoch
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(ValueError, match="was trained with other settings"):
        fit_acoustic(model(), features, targets, replace(config, lr=0.1), checkpoint)
    with pytest.raises(ValueError, match="features and targets differ in length"):
        fit_acoustic(model(), features, targets[:2], config)


@pytest.mark.parametrize("objective", ["frames", "classes", "ctc"])
def test_the_loss_of_a_batch_is_a_sum_over_its_frames_or_utterances(objective):
    """The halves of a batch (its shares under torchrun) add up to the whole batch, in loss
    and in units, and the loss per unit is the mean loss of the batch (frame or utterance
    cross-entropy, CTC per target symbol averaged over utterances)."""
    generator = torch.Generator().manual_seed(4)
    features = _features(generator, [5, 8, 6, 7, 9, 4])
    kind, blank = "bilstm", None
    if objective == "frames":
        targets = [torch.randint(0, 3, (len(f),), generator=generator) for f in features]
        targets[1][:3] = -1  # ignored frames
    elif objective == "classes":
        kind, targets = "classifier", torch.tensor([0, 1, 2, 0, 1, 2])
    else:  # symbols 0 and 1, blank 2; one empty transcript
        targets = [torch.randint(0, 2, (n,), generator=generator) for n in (2, 1, 3, 2, 0, 1)]
        blank = 2
    model = build(AcousticConfig(kind=kind, input_dim=5, num_outputs=3, hidden=8, dropout=0.0))
    config = AcousticTrainConfig()
    task = AcousticTask(model, features, targets, config, blank, (features[:1], targets[:1]))
    batch = list(range(6))
    total, units = task.loss(batch, torch.Generator())
    (odd, odd_units), (even, even_units) = (
        task.loss(batch[i::2], torch.Generator()) for i in (0, 1)
    )
    torch.testing.assert_close(total, odd + even)
    assert units == odd_units + even_units
    x, lengths = pad_features(features)
    logits = model(x, lengths)
    if objective == "classes":
        mean = torch.nn.functional.cross_entropy(logits, targets)
        assert units == 6
    else:
        y = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True, padding_value=-1)
        if objective == "frames":
            flat = logits.reshape(-1, 3), y.reshape(-1)
            mean = torch.nn.functional.cross_entropy(*flat, ignore_index=-1)
            assert units == sum(len(f) for f in features) - 3
        else:
            mean = ctc_loss(logits.log_softmax(-1), y, lengths, blank=2, zero_infinity=True)
            assert units == 6
    torch.testing.assert_close(total / units, mean)


def test_a_single_utterance_trains_without_held_out_data_and_keeps_the_last_epoch():
    features = _features(torch.Generator().manual_seed(5), [6])
    targets = [torch.tensor([0, 0, 1, 1, 2, 2])]
    torch.manual_seed(0)
    model = build(AcousticConfig(kind="dnn", input_dim=5, num_outputs=3, hidden=8, context=1))
    history = fit_acoustic(model, features, targets, AcousticTrainConfig(epochs=2))
    assert len(history) == 2 and history.best_epoch == 2
    assert "valid_accuracy" not in history.columns and history.lr == [1e-3, 1e-3]


def test_naive_collapsing_is_greedy_decoding_with_silence_as_blank():
    def collapse(frames, blank):
        one_hot = torch.nn.functional.one_hot(frames, 11).double().clamp_min(1e-9).log()
        labels, counts, _ = greedy_decode(one_hot[None], blank=blank)
        return tuple(labels[0, : counts[0]].tolist())

    assert collapse(torch.tensor([3, 3, 10, 10, 3, 2, 2, 10]), blank=10) == (3, 3, 2)
    assert collapse(torch.tensor([10, 10]), blank=10) == ()
    with pytest.raises(ValueError, match="non-empty"):  # an utterance has at least one frame
        greedy_decode(torch.zeros(1, 0, 11), blank=10)


def test_comparison_run_folder(synthetic, tmp_path, monkeypatch):
    train, test = synthetic
    run_dir = tmp_path / "asr"
    results = run_speech(
        train,
        test,
        run_dir,
        tasks=("isolated", "strings"),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    rows = results["rows"]
    assert {(r["task"], r["system"]) for r in rows} == {
        (t, s) for t in ("isolated", "strings") for s in experiment.SYSTEMS
    }
    assert experiment.SYSTEMS == (
        "gmm",
        "gmm-mono",
        "gmm-tri",
        "dnn",
        "dnn-mono",
        "dnn-tri",
        "bilstm",
        "bilstm-mono",
        "bilstm-tri",
        "rnn",
        "ctc",
    )
    for row in rows:
        assert 0 <= row["metrics"]["error_rate"] and row["metrics"]["reference_words"] > 0
        assert len(row["hypotheses"]) == len(row["references"])
    table = (run_dir / "results.md").read_text()
    for name in experiment.NAMES.values():
        assert name in table
    for png in (
        "errors",
        "confusion",
        "training-isolated",
        "alignment-isolated",
        "alignment-strings",
    ):
        assert (run_dir / f"{png}.png").stat().st_size > 0
    # A saved system decodes the test utterances as the comparison did.
    strings = connected_strings(test, TINY.test_strings, TINY.string_seed + 1)
    for task, system in [
        (t, s)
        for t in ("isolated", "strings")
        for s in experiment.SYSTEMS
        if s not in ("bilstm", "bilstm-mono")
    ]:
        name = f"{task}-{system}.pt" if system.startswith("gmm") else f"{task}-{system}-seed0.pt"
        recognizer = Recognizer.load(run_dir / "models" / name)
        row = next(r for r in rows if (r["task"], r["system"]) == (task, system))
        utterances = test if task == "isolated" else strings
        features = extract(utterances, TINY.features)
        assert [list(h) for h in recognizer.decode(features)] == row["hypotheses"]
        # From audio: one speaker's test recordings together share their statistics.
        index = [i for i, u in enumerate(utterances) if u.speaker == utterances[0].speaker]
        spoken = recognizer.recognize(
            [(utterances[i].waveform, utterances[i].sample_rate) for i in index]
        )
        assert spoken == [tuple(DIGITS[w] for w in row["hypotheses"][i]) for i in index]
        if system in ("rnn", "ctc"):
            continue
        # Times: the best path's words in order, each phone inside its word; forced
        # alignment places the reference words.
        audio = [(utterances[i].waveform, utterances[i].sample_rate) for i in index]
        timed = recognizer.transcribe(audio)
        assert [tuple(w.label for w in t.words) for t in timed] == spoken
        said = [tuple(DIGITS[w] for w in utterances[i].words) for i in index]
        aligned = recognizer.align(audio, said)
        assert [tuple(w.label for w in t.words) for t in aligned] == said
        for transcript in [*timed, *aligned]:
            ends = [b for w in transcript.words for b in (w.start, w.end)]
            assert ends == sorted(ends) and all(w.start < w.end for w in transcript.words)
            for phone in transcript.phones:
                assert any(w.start <= phone.start < phone.end <= w.end for w in transcript.words)
            assert bool(transcript.phones) == ("-" in system and bool(transcript.words))
        with pytest.raises(ValueError, match=r"transcripts\[0\]: the word 'maybe' is not one"):
            recognizer.align(audio[:1], [("maybe",)])
    # A system asked for later joins the rows of its split without replacing the others.
    subset = run_speech(
        train,
        test,
        tmp_path / "subset",
        tasks=("isolated",),
        systems=("gmm",),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    assert [r["system"] for r in subset["rows"]] == ["gmm"]
    more = run_speech(
        train,
        test,
        tmp_path / "subset",
        tasks=("isolated",),
        systems=("gmm", "rnn"),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    assert sorted(r["system"] for r in more["rows"]) == ["gmm", "rnn"]
    assert more["rows"][0] == subset["rows"][0]
    # Finished splits are read back, not retrained; other settings are refused.
    monkeypatch.setattr(experiment, "train_systems", lambda *a, **k: pytest.fail("retrained"))
    again = run_speech(
        train, test, run_dir, tasks=("isolated",), settings=TINY, corpus="synthetic", words=DIGITS
    )
    assert again["rows"] == json.loads((run_dir / "results.json").read_text())["rows"]
    with pytest.raises(ValueError, match="was trained with other settings"):
        run_speech(
            train,
            test,
            run_dir,
            settings=replace(TINY, train_strings=5),
            corpus="synthetic",
            words=DIGITS,
        )


def test_command_line_trains_and_recognizes(tmp_path, monkeypatch, capsys, synthetic):
    asked = []

    def settings(corpus, epochs=None, speed_factors=None, spec_augment=None, amp=False, average=0):
        asked.append((speed_factors, spec_augment))
        return TINY

    monkeypatch.setattr(experiment, "default_settings", settings)
    monkeypatch.setattr(experiment, "load_corpus", lambda corpus, data: (*synthetic, DIGITS))
    command = ["train-asr", "--tasks", "isolated", "--runs", str(tmp_path), "--quiet"]
    assert cli.main([*command, "--name", "cli"]) == 0
    assert cli.main([*command, "--name", "none", "--speed-factors", "--spec-augment"]) == 0
    assert asked == [(None, None), ([], True)]
    out = capsys.readouterr().out
    assert "SYNTHETIC" in out and "| GMM-HMM |" in out
    utterance = synthetic[1][0]
    wav = tmp_path / "digit.wav"
    write_wav(wav, utterance.waveform, utterance.sample_rate)
    model = tmp_path / "cli" / "models" / "isolated-dnn-seed0.pt"
    assert cli.main(["recognize", "--model", str(model), str(wav)]) == 0
    line = capsys.readouterr().out.strip()
    path, words = line.split("\t")
    assert path == str(wav) and words in DIGITS
    assert cli.main(["recognize", "--model", str(model), str(wav), "--ctm", "words"]) == 0
    file, channel, start, duration, word = capsys.readouterr().out.split()
    assert (file, channel, word) == (str(wav), "1", words)
    seconds = len(utterance.waveform) / utterance.sample_rate
    assert 0 <= float(start) < float(start) + float(duration) <= seconds + 0.01
    assert cli.main(["recognize", "--model", str(model), str(wav), "--nbest", "3"]) == 0
    ranked = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [r[1] for r in ranked] == ["1", "2", "3"] and ranked[0][3] == words
    assert len({r[3] for r in ranked}) == 3 and all(r[0] == str(wav) for r in ranked)
    scores = [float(r[2]) for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert cli.main(["recognize", "--model", str(model), str(wav), "--ctm", "phones"]) == 2
    assert "--ctm phones needs a system over phones" in capsys.readouterr().err
    ctc = tmp_path / "cli" / "models" / "isolated-ctc-seed0.pt"
    assert cli.main(["recognize", "--model", str(ctc), str(wav), "--ctm", "words"]) == 2
    assert "transcribe needs an HMM system" in capsys.readouterr().err
    assert cli.main(["recognize", "--model", str(tmp_path / "none.pt"), str(wav)]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_gmm_hmm_recognises_real_digits():
    """Flat start on two speakers' takes 5-14, decoded on their takes 0-4 (real FSDD)."""
    recordings = [r for r in read_fsdd(real_corpus("fsdd")) if r.speaker in ("george", "lucas")]
    train = isolated_utterances([r for r in recordings if 5 <= r.take < 15])
    test = isolated_utterances([r for r in recordings if r.take < 5])
    config = FeatureConfig()
    topology = Topology(DIGITS, word_states=5, silence_states=2)
    emissions, loops = flat_start(
        topology, extract(train, config), [u.words for u in train], mixtures=2, iterations=5
    )
    graph = decoding_graph(topology, isolated_grammar(10), loops)
    hypotheses = decode(frame_scores(emissions, extract(test, config)), graph)
    accuracy = sum(h == u.words for h, u in zip(hypotheses, test, strict=True)) / len(test)
    assert len(test) == 100 and accuracy > 0.85  # chance is 0.10


def test_default_settings_perturb_the_speed_of_fsdd_only_unless_told():
    assert experiment.default_settings("fsdd").speed_factors == (0.9, 1.1)
    assert experiment.default_settings("fsdd", speed_factors=[]).speed_factors == ()
    assert experiment.default_settings("synthetic").speed_factors == ()
    assert experiment.default_settings("synthetic", 3, [1.1]).speed_factors == (1.1,)


def test_speed_perturbation_triples_the_training_data_and_never_the_test_data(
    synthetic, tmp_path, monkeypatch
):
    train, test = synthetic
    sizes = []

    def spy(topology, training, testing, isolated, *args, **kwargs):
        sizes.append((len(training[0]), len(testing), len(isolated[0])))
        return {}

    monkeypatch.setattr(experiment, "train_systems", spy)
    monkeypatch.setattr(experiment, "plot_errors", lambda *args: None)
    settings = replace(TINY, speed_factors=(0.9, 1.1))
    run_speech(train, test, tmp_path, settings=settings, corpus="synthetic", words=DIGITS)
    speakers = len(train + test) // 2
    assert sizes == [
        (3 * len(train), len(test), 3 * len(train)),  # isolated
        (3 * speakers, speakers, 3 * speakers),  # each held-out speaker
        (3 * speakers, speakers, 3 * speakers),
        (3 * TINY.train_strings, TINY.test_strings, 3 * len(train)),  # strings
    ]


def test_load_corpus_errors(tmp_path):
    with pytest.raises(ValueError, match="corpus must be 'fsdd' or 'synthetic'"):
        experiment.load_corpus("timit", None)
    with pytest.raises(ValueError, match="no fsdd/ folder under"):
        experiment.load_corpus("fsdd", str(tmp_path))


def test_speaker_folds_can_be_shared(synthetic, tmp_path):
    train, test = synthetic
    first = run_speech(
        train,
        test,
        tmp_path,
        tasks=("speakers",),
        systems=("gmm",),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
        folds=["spk1"],
    )
    assert {r["split"] for r in first["rows"]} == {"spk1"}
    both = run_speech(
        train,
        test,
        tmp_path,
        tasks=("speakers",),
        systems=("gmm",),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    assert sorted(r["split"] for r in both["rows"]) == ["spk0", "spk1"]
    assert next(r for r in both["rows"] if r["split"] == "spk1") == first["rows"][0]
    assert "Leave one speaker out" in (tmp_path / "results.md").read_text()


def test_recognizer_without_feature_settings_refuses(synthetic, tmp_path):
    train, test = synthetic
    run_speech(
        train,
        test,
        tmp_path,
        tasks=("isolated",),
        systems=("gmm",),
        settings=TINY,
        corpus="synthetic",
        words=DIGITS,
    )
    saved = torch.load(tmp_path / "models" / "isolated-gmm.pt", weights_only=True)
    # Systems saved when cmvn was a flag (per-utterance mean normalisation) keep its meaning.
    for flag, mode in ((True, "utterance"), (False, "none")):
        old = {key: value for key, value in saved["features"].items() if key != "cmvn_variance"}
        features = Recognizer({**saved, "features": {**old, "cmvn": flag}}).features
        assert (features.cmvn, features.cmvn_variance) == (mode, False)
    recognizer = Recognizer({**saved, "features": None})
    with pytest.raises(ValueError, match="not saved with its feature settings"):
        recognizer.recognize([(test[0].waveform, test[0].sample_rate)])
    assert Path(tmp_path / "results.md").exists()


def test_plots_of_a_run_folder_shared_by_two_processes_show_every_system(
    tmp_path, monkeypatch, synthetic
):
    """The training curves and the confusions are drawn from results.json's rows, so the
    second of two runs into one folder (one per process, say) draws the first one's systems
    too, and the confusions are those of the best system of both."""
    drawn = {}
    monkeypatch.setattr(experiment, "plot_training", lambda h, t, p: drawn.update(training=h))
    monkeypatch.setattr(
        experiment, "plot_confusion", lambda r, h, w, title, p: drawn.update(confusion=title)
    )
    train, test = synthetic
    for systems in (("gmm", "dnn"), ("rnn",)):
        results = run_speech(
            train, test, tmp_path, tasks=("isolated",), systems=systems, settings=TINY,
            corpus="synthetic", words=DIGITS,
        )  # fmt: skip
    names = experiment.NAMES
    passes = TINY.systems.realign + 1
    want = [f"{names['dnn']} pass {i + 1}" for i in range(passes)] + [f"{names['rnn']} pass 1"]
    assert list(drawn["training"]) == want
    rows = {r["system"]: r["metrics"]["error_rate"] for r in results["rows"]}
    best = min(rows, key=lambda s: (rows[s], experiment.SYSTEMS.index(s)))
    assert drawn["confusion"] == f"isolated words, {names[best]}"


def test_a_results_file_of_the_layout_before_the_run_layer_is_refused(
    tmp_path, monkeypatch, synthetic
):
    """A results.json written before the shared run layer (rows of a layout of its own, no
    ``format``) is refused, naming the file, before anything trains; the folder is left as
    it was."""
    monkeypatch.setattr(experiment, "train_systems", lambda *a, **k: pytest.fail("trained"))
    old = {"settings": {"corpus": "synthetic"}, "rows": [{"task": "isolated", "system": "rnn"}]}
    (tmp_path / "results.json").write_text(json.dumps(old))
    train, test = synthetic
    only = {"tasks": ("isolated",), "settings": TINY, "corpus": "synthetic", "words": DIGITS}
    named = re.escape(str(tmp_path / "results.json"))
    with pytest.raises(ValueError, match=rf"{named} is not a run folder's results.json"):
        run_speech(train, test, tmp_path, systems=("gmm",), **only)
    with pytest.raises(ValueError, match=rf"{named} is not a run folder's results.json"):
        experiment.redraw(tmp_path)
    assert json.loads((tmp_path / "results.json").read_text()) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.json.lock"]


def test_results_table_marks_tasks_a_system_did_not_train():
    """A system trained on some tasks only gets "-" in the others' columns, and only the
    systems trained on leave-one-speaker-out appear in its per-speaker table."""

    def row(task, system, split, error_rate):
        metrics = {"error_rate": error_rate, "decode_seconds": 0.5}
        return {
            "task": task,
            "system": system,
            "seed": 0,
            "split": split,
            "metrics": metrics,
            "seconds": 10.0,
            "references": [[1]] * 250,
        }

    results = {
        "corpus": "fsdd",
        "rows": [
            row("isolated", "gmm", "official", 0.004),
            row("isolated", "ctc", "official", 0.016),
            row("speakers", "gmm", "george", 0.2),
            row("speakers", "gmm", "lucas", 0.1),
        ],
    }
    table = experiment.results_table(results)
    assert "| CTC (BiLSTM) | 98.40 (+300%) | - | 10 | 2.00 |" in table
    per_speaker = table.split("Leave one speaker out")[1]
    assert "| GMM-HMM | 80.0 | 90.0 |" in per_speaker
    assert "CTC" not in per_speaker


def test_phone_systems_refuse_a_word_without_a_pronunciation_before_anything_is_written(
    synthetic, tmp_path
):
    train, test = synthetic
    words = ("qqzx", *DIGITS[1:])
    with pytest.raises(ValueError, match=r"'qqzx' is not in .*\['gmm-mono'\].*--lexicon FILE"):
        run_speech(
            train,
            test,
            tmp_path / "asr",
            tasks=("isolated",),
            systems=("gmm", "gmm-mono"),
            settings=TINY,
            corpus="synthetic",
            words=words,
        )
    assert not (tmp_path / "asr").exists()
