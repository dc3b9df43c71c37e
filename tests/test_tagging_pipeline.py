"""The tagging path end to end: batch, train, checkpoint, resume, save, load, tag, score."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest
import torch
from realdata import real_corpus

from hybrid.batching import bucketed_batches
from hybrid.cli import main
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.corpus import read_atis
from hybrid.tagging.experiment import run_comparison
from hybrid.tagging.inference import tag_texts
from hybrid.tagging.metrics import span_scores
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import (
    TaggerTrainConfig,
    TaggingTask,
    evaluate,
    fit,
)

SMALL = TaggerConfig(word_dim=16, hidden=16, char_dim=8, char_out=8, dropout=0.1)


@pytest.fixture(scope="module")
def splits():
    return airline_splits(train=120, valid=40, test=40, seed=3)


def test_batch_shapes_and_padding(splits):
    vocabulary = TaggingVocabulary.build(splits["train"])
    batch = vocabulary.batch(splits["train"][:5])
    longest = max(len(s.words) for s in splits["train"][:5])
    assert batch.words.shape == batch.tags.shape == (5, longest)
    assert batch.chars.shape[:2] == (5, longest)
    for b, sentence in enumerate(splits["train"][:5]):
        n = len(sentence.words)
        assert int(batch.lengths[b]) == n
        assert (batch.tags[b, n:] == -1).all() and (batch.words[b, n:] == 0).all()
        assert vocabulary.tags.decode(batch.tags[b, :n].tolist()) == list(sentence.tags)
    again = TaggingVocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict())))
    assert torch.equal(again.batch(splits["train"][:5]).words, batch.words)


def test_shuffled_batches_cover_every_sentence_once(splits):
    vocabulary = TaggingVocabulary.build(splits["train"])
    generator = torch.Generator().manual_seed(0)
    model = Tagger(SMALL, vocabulary)
    task = TaggingTask(model, vocabulary, splits["train"], None, TaggerTrainConfig(batch_size=16))
    chosen = [[splits["train"][i] for i in batch] for batch in task.plan(generator)]
    seen = sorted(tuple(vocabulary.batch(b).lengths.tolist()) for b in chosen)
    total = sum(len(lengths) for lengths in seen)
    assert total == len(splits["train"])


@pytest.mark.parametrize("head", ["softmax", "crf", "ssvm"])
def test_training_lowers_the_loss_and_resumes(head, splits, tmp_path):
    vocabulary = TaggingVocabulary.build(splits["train"])
    config = TaggerConfig(**{**vars(SMALL), "head": head})
    checkpoint = tmp_path / "run.pt"
    model = Tagger(config, vocabulary)
    first = fit(
        model,
        vocabulary,
        splits["train"],
        splits["valid"],
        TaggerTrainConfig(epochs=1, batch_size=16, lr=1e-2),
        checkpoint,
        progress=False,
        log=lambda _: None,
    )
    resumed = Tagger(config, vocabulary)
    history = fit(
        resumed,
        vocabulary,
        splits["train"],
        splits["valid"],
        TaggerTrainConfig(epochs=3, batch_size=16, lr=1e-2),
        checkpoint,
        progress=False,
        log=lambda _: None,
    )
    assert len(first.loss) == 1 and len(history.loss) == 3
    assert history.loss[0] == first.loss[0]  # the first epoch was not run again
    assert history.loss[-1] < history.loss[0]


def test_save_load_tag_and_score(splits, tmp_path):
    vocabulary = TaggingVocabulary.build(splits["train"])
    model = Tagger(SMALL, vocabulary)
    fit(
        model,
        vocabulary,
        splits["train"],
        splits["valid"],
        TaggerTrainConfig(epochs=2, batch_size=16, lr=1e-2),
        progress=False,
        log=lambda _: None,
    )
    path = tmp_path / "tagger.pt"
    model.save(path)
    loaded = Tagger.load(path)
    loaded_vocabulary = loaded.vocabulary
    before = evaluate(model, vocabulary, splits["test"])
    after = evaluate(loaded, loaded_vocabulary, splits["test"])
    assert before == after
    text = " ".join(splits["test"][0].words)
    (result,) = tag_texts(loaded, loaded_vocabulary, [text], k=3)
    n = len(splits["test"][0].words)
    assert len(result["tags"]) == len(result["confidence"]) == n
    assert all(0.0 <= c <= 1.0 for c in result["confidence"])
    assert 1 <= len(result["nbest"]) <= 3
    assert result["nbest"][0]["tags"] == result["tags"]  # the best of the n-best is the decode
    scores = [entry["score"] for entry in result["nbest"]]
    assert scores == sorted(scores, reverse=True)
    assert "intent" in result and 0.0 <= result["intent_confidence"] <= 1.0
    for span in result["spans"]:
        assert result["tags"][span["start"]] == f"B-{span['label']}"


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    first, second = a.state_dict(), b.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_a_tagger_saves_itself_and_loads_back_with_its_vocabulary(splits, tmp_path):
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    model = Tagger(SMALL, vocabulary)
    assert model.vocabulary is vocabulary
    assert "vocabulary" not in model._modules  # plain data, not a submodule
    assert not any(k.startswith("vocabulary") for k in model.state_dict())
    path = tmp_path / "tagger.pt"
    model.save(path)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"file_kind", "config", "vocabulary", "model"}
    assert saved["file_kind"] == "tagger"
    loaded = Tagger.load(path, device="cpu")
    assert type(loaded) is Tagger and not any(m.training for m in loaded.modules())
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    assert loaded.config == model.config
    assert loaded.vocabulary.to_dict() == vocabulary.to_dict()
    assert _same_weights(loaded, model)
    assert model.training  # saving leaves the model as it was
    # a tagger saved before intent_pooling existed had the last-state intent head
    last = Tagger(replace(SMALL, intent_pooling="last"), vocabulary)
    last.save(path)
    older = torch.load(path, weights_only=True)
    del older["config"]["intent_pooling"]
    torch.save(older, path)
    loaded = Tagger.load(path)
    assert loaded.config.intent_pooling == "last" and _same_weights(loaded, last)


def test_structured_heads_never_decode_forbidden_transitions(splits):
    vocabulary = TaggingVocabulary.build(splits["train"])
    model = Tagger(SMALL, vocabulary)  # untrained: emissions are arbitrary
    out = model.predict(vocabulary.batch(splits["test"], with_labels=False))
    for row, length in zip(out["tags"].tolist(), out["tags"].ne(-1).sum(1).tolist(), strict=True):
        tags = vocabulary.tags.decode(row[:length])
        for prev, cur in zip(["O", *tags], tags, strict=False):
            if cur.startswith("I-"):
                assert prev[2:] == cur[2:] and prev[:1] in "BI"


def test_comparison_writes_results_and_resumes(splits, tmp_path):
    small = {k: v[:40] for k, v in splits.items()}
    run = tmp_path / "run"
    results = run_comparison(
        small,
        run,
        heads=("softmax", "crf"),
        seeds=(0,),
        tagger=SMALL,
        training=TaggerTrainConfig(epochs=1, batch_size=16),
        progress=False,
        log=lambda _: None,
    )
    for name in (
        "results.json",
        "results.md",
        "training_curves.png",
        "label_f1.png",
        "confusion.png",
        "models/crf-seed0.pt",
        "checkpoints/crf-seed0.pt",
    ):
        assert (run / name).exists(), name
    assert {(r["system"], r["split"]) for r in results["rows"]} == {
        (head, split) for head in ("softmax", "crf") for split in ("test", "dev")
    }
    lines = []
    again = run_comparison(
        small,
        run,
        heads=("softmax", "crf"),
        seeds=(0,),
        tagger=SMALL,
        training=TaggerTrainConfig(epochs=1, batch_size=16),
        progress=False,
        log=lines.append,
    )
    assert sum("read back" in line for line in lines) == 2
    assert again["summary"] == results["summary"]


def test_command_line_trains_and_tags(tmp_path, capsys):
    code = main(
        [
            "train-tagger",
            "--limit",
            "30",
            "--epochs",
            "1",
            "--seeds",
            "0",
            "--heads",
            "crf",
            "--hidden",
            "8",
            "--word-dim",
            "8",
            "--quiet",
            "--runs",
            str(tmp_path),
        ]
    )
    assert code == 0
    model = tmp_path / "synthetic" / "models" / "crf-seed0.pt"
    capsys.readouterr()
    assert main(["tag", "--model", str(model), "--json", "show me flights from boston"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert result["words"] == ["show", "me", "flights", "from", "boston"]
    assert main(["train-tagger", "--corpus", "atis", "--data", str(tmp_path / "none")]) == 2


def test_tiny_tagger_on_real_atis_slice(tmp_path):
    folder = real_corpus("atis")
    train, test = read_atis(folder, "train")[:300], read_atis(folder, "test")[:100]
    vocabulary = TaggingVocabulary.build(train)
    model = Tagger(SMALL, vocabulary)
    history = fit(
        model,
        vocabulary,
        train,
        train[:50],
        TaggerTrainConfig(epochs=2, batch_size=16, lr=1e-2),
        progress=False,
        log=lambda _: None,
    )
    assert history.loss[-1] < history.loss[0]
    model.save(tmp_path / "atis.pt")
    loaded = Tagger.load(tmp_path / "atis.pt")
    results = tag_texts(loaded, loaded.vocabulary, [" ".join(s.words) for s in test])
    scores = span_scores([list(s.tags) for s in test], [r["tags"] for r in results])
    assert 0.0 <= scores["f1"] <= 1.0 and scores["token_accuracy"] > 0.5


def _quiet_fit(model, vocabulary, splits, config, checkpoint=None):
    return fit(
        model,
        vocabulary,
        splits["train"],
        splits["valid"],
        config,
        checkpoint,
        progress=False,
        log=lambda _: None,
    )


def test_weight_averaging_keeps_the_moving_average(splits):
    """One epoch with ``average=d`` keeps ``w <- d w + (1 - d) w_step``, replayed by hand."""
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    model = Tagger(SMALL, vocabulary)
    replay = copy.deepcopy(model)
    config = TaggerTrainConfig(epochs=1, batch_size=16, lr=1e-2, average=0.9, seed=4)
    _quiet_fit(model, vocabulary, splits, config)

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(replay.parameters(), lr=config.lr)
    average = None
    replay.train()
    lengths = [len(s.words) for s in splits["train"]]
    for indices in bucketed_batches(lengths, config.batch_size, generator):
        batch = vocabulary.batch([splits["train"][i] for i in indices])
        optimizer.zero_grad()
        replay.loss(batch).backward()
        torch.nn.utils.clip_grad_norm_(replay.parameters(), config.clip)
        optimizer.step()
        weights = [p.detach().clone() for p in replay.parameters()]
        if average is None:
            average = weights
        else:
            average = [0.9 * a + 0.1 * w for a, w in zip(average, weights, strict=True)]
    for kept, expected in zip(model.parameters(), average, strict=True):
        torch.testing.assert_close(kept, expected, rtol=1e-5, atol=1e-6)
    assert not all(
        torch.allclose(a, w) for a, w in zip(average, replay.parameters(), strict=True)
    )  # the average is not the last step


def test_weight_averaging_resumes_exactly(splits, tmp_path):
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    straight = Tagger(SMALL, vocabulary)
    interrupted = copy.deepcopy(straight)
    config = TaggerTrainConfig(epochs=2, batch_size=16, lr=1e-2, average=0.9, patience=5)
    whole = _quiet_fit(straight, vocabulary, splits, config)
    checkpoint = tmp_path / "run.pt"
    _quiet_fit(interrupted, vocabulary, splits, replace(config, epochs=1), checkpoint)
    resumed = Tagger(SMALL, vocabulary)
    history = _quiet_fit(resumed, vocabulary, splits, config, checkpoint)
    assert history.dev_f1 == whole.dev_f1
    for a, b in zip(resumed.state_dict().values(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_train_config_validation():
    with pytest.raises(ValueError, match="average"):
        TaggerTrainConfig(average=1.0)


def test_device_errors_name_the_device():
    from hybrid.training import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_development_score_averages_span_f1_and_intent_accuracy(splits):
    nan = float("nan")
    vocabulary = TaggingVocabulary.build(splits["train"])
    task = TaggingTask(Tagger(SMALL, vocabulary), vocabulary, [], [], TaggerTrainConfig())
    assert task.score({"dev_f1": 0.7, "dev_intent_accuracy": nan}) == (0.7,)
    joint = [
        task.score({"dev_f1": f, "dev_intent_accuracy": i}) for f, i in [(0.9, 0.5), (0.8, 0.8)]
    ]
    assert joint[1] > joint[0]  # (0.8 + 0.8) / 2 > (0.9 + 0.5) / 2


def test_training_without_development_set_keeps_the_last_epoch(splits):
    vocabulary = TaggingVocabulary.build(splits["train"])
    torch.manual_seed(0)
    model = Tagger(SMALL, vocabulary)
    history = _quiet_fit(
        model,
        vocabulary,
        {"train": splits["train"], "valid": None},
        TaggerTrainConfig(epochs=3, patience=1),
    )
    assert len(history.loss) == 3  # patience does not apply without a development set
    assert "dev_f1" not in history.columns and history.best_epoch == 3


def test_refit_retrains_on_train_and_dev_for_the_chosen_epochs(splits, tmp_path):
    small = {k: v[:40] for k, v in splits.items()}
    training = TaggerTrainConfig(epochs=3, batch_size=8, lr=1e-2)

    def compare():
        return run_comparison(
            small,
            tmp_path / "run",
            ["crf"],
            [5],
            SMALL,
            training,
            progress=False,
            log=lambda _: None,
            refit=True,
        )

    results = compare()
    test, dev = results["rows"]
    record = json.loads((tmp_path / "run" / "checkpoints" / "crf-seed5.json").read_text())
    f1 = record["history"]["dev_f1"]
    chosen = max(range(len(f1)), key=lambda e: (f1[e], -e)) + 1  # the first of the best
    assert test["refit_epochs"] == dev["refit_epochs"] == record["refit_epochs"] == chosen
    vocabulary = TaggingVocabulary.build(small["train"], more_labels=small["valid"])
    torch.manual_seed(5)
    replay = Tagger(replace(SMALL, head="crf"), vocabulary)
    _quiet_fit(
        replay,
        vocabulary,
        {"train": small["train"] + small["valid"], "valid": None},
        replace(training, seed=5, epochs=chosen),
    )
    saved = Tagger.load(tmp_path / "run" / "models" / "crf-seed5.pt")
    for a, b in zip(saved.state_dict().values(), replay.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    # the selection pass's development scores
    assert {k: dev[k] for k in ("metrics", "per_label")} == record["dev"]
    again = compare()
    assert again["rows"] == results["rows"]  # read back, not retrained


def test_more_labels_add_tags_and_intents_but_not_words():
    from hybrid.tagging.corpus import Sentence

    train = [Sentence(("fly", "boston"), ("O", "B-city"), "flight")]
    dev = [Sentence(("cheap", "fares"), ("B-cost", "O"), "airfare")]
    vocabulary = TaggingVocabulary.build(train, more_labels=dev)
    assert set(vocabulary.tags.tokens) == {"O", "B-city", "B-cost"}
    assert set(vocabulary.intents.tokens) == {"flight", "airfare"}
    assert "cheap" not in vocabulary.words.tokens and "fly" in vocabulary.words.tokens
    assert "h" not in vocabulary.chars.tokens


def test_read_back_refuses_a_run_trained_with_other_settings(splits, tmp_path):
    small = {k: v[:30] for k, v in splits.items()}
    training = TaggerTrainConfig(epochs=1, batch_size=8)
    quiet = {"progress": False, "log": lambda _: None}
    run_comparison(small, tmp_path / "run", ["softmax"], [0], SMALL, training, **quiet)
    refused = r"other settings \(settings\.tagger\.hidden: 16 there, 32 asked\)"
    with pytest.raises(ValueError, match=refused):
        run_comparison(
            small, tmp_path / "run", ["softmax"], [0], replace(SMALL, hidden=32), training, **quiet
        )
    refused = r"other settings \(settings\.training\.lr: 0.001 there, 0.01 asked\)"
    with pytest.raises(ValueError, match=refused):
        run_comparison(
            small, tmp_path / "run", ["softmax"], [0], SMALL, replace(training, lr=0.01), **quiet
        )


def test_tagging_text_with_a_feature_column():
    from hybrid.tagging.corpus import Sentence

    train = [
        Sentence(
            ("the", "deficit", "will", "narrow"),
            ("B-NP", "I-NP", "B-VP", "I-VP"),
            None,
            ("DT", "NN", "MD", "VB"),
        ),
        Sentence(("he", "reckons"), ("B-NP", "B-VP"), None, ("PRP", "VBZ")),
    ]
    vocabulary = TaggingVocabulary.build(train)
    model = Tagger(replace(SMALL, head="crf"), vocabulary)
    (result,) = tag_texts(model, vocabulary, ["he/PRP reckons/VBZ a/DT/x"])
    assert result["words"] == ["he", "reckons", "a/DT"]  # the last "/" separates the feature
    assert len(result["tags"]) == 3
    with pytest.raises(ValueError, match="word/FEATURE"):
        tag_texts(model, vocabulary, ["he reckons"])
    with pytest.raises(ValueError, match="word/FEATURE"):
        tag_texts(model, vocabulary, ["/PRP reckons/VBZ"])


def test_patience_zero_means_never_stop_early():
    from hybrid.cli import build_parser

    assert build_parser().parse_args(["train-tagger", "--patience", "0"]).patience == 0
    assert TaggerTrainConfig(patience=0).patience == 0
