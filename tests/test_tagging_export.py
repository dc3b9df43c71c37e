"""Exported taggers tag like the taggers they came from.

The oracle is the trained tagger itself (`Tagger.predict` through `tag_texts`): its export to
TorchScript and to ONNX, run by `hybrid.deploy` (onnxruntime, no torch), must give every
sentence the same tags, n-best taggings and intent, with confidences and scores within
1e-4. On real data every test sentence of ATIS and CoNLL-2000 is compared, with taggers
trained briefly here (the comparison needs a trained model's scores, not a good one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import torch
from realdata import real_corpus

from hybrid import deploy
from hybrid.cli import main
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.datasets import load_tagging, preset_files
from hybrid.tagging.export import PortableTagger, export_tagger
from hybrid.tagging.inference import tag_texts
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits
from hybrid.tagging.train import TaggerTrainConfig, fit

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated", "ignore::torch.jit.TracerWarning"
)
pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")

SMALL = {"word_dim": 16, "hidden": 16, "char_dim": 8, "char_out": 8, "dropout": 0.1}


def _trained(sentences, valid=None, epochs=3, **config) -> Tagger:
    vocabulary = TaggingVocabulary.build(sentences)
    torch.manual_seed(0)
    model = Tagger(TaggerConfig(**{**SMALL, **config}), vocabulary)
    settings = TaggerTrainConfig(epochs=epochs, batch_size=32, lr=1e-2, seed=0, patience=0)
    fit(model, vocabulary, sentences, valid, settings, progress=False, log=lambda _: None)
    return model.eval()


def _texts(sentences) -> list[str]:
    if sentences[0].features is None:
        return [" ".join(s.words) for s in sentences]
    return [
        " ".join(f"{w}/{f}" for w, f in zip(s.words, s.features, strict=True)) for s in sentences
    ]


def _assert_same_results(got: list[dict], expected: list[dict]) -> None:
    """Same words, tags, spans, n-best taggings and intents; numbers within 1e-4 (the
    confidences are rounded to 4 decimals, so they may differ by one last digit)."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        for key in ("words", "tags", "spans", "intent"):
            assert g.get(key) == e.get(key), (key, e["words"])
        assert [n["tags"] for n in g.get("nbest", [])] == [n["tags"] for n in e.get("nbest", [])]
        torch.testing.assert_close(
            torch.tensor(g["confidence"]), torch.tensor(e["confidence"]), atol=1.5e-4, rtol=0
        )
        for gn, en in zip(g.get("nbest", []), e.get("nbest", []), strict=True):
            assert gn["score"] == pytest.approx(en["score"], rel=1e-4, abs=1e-4)
        if "intent_confidence" in e:
            assert g["intent_confidence"] == pytest.approx(e["intent_confidence"], abs=1.5e-4)


def _exported_results(model: Tagger, fmt: str, texts: list[str], k, tmp_path) -> list[dict]:
    out = tmp_path / f"tagger.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_tagger(model, fmt, out, k)
    return deploy.load(out).tag(texts, k)


@pytest.fixture(scope="module")
def airline():
    return airline_splits(train=160, valid=40, test=60, seed=5)


@pytest.mark.parametrize("head", ["crf", "ssvm", "softmax"])
def test_portable_tagger_predicts_like_the_tagger(head, airline):
    model = _trained(airline["train"], head=head, epochs=2, char_encoder="lstm")
    portable = PortableTagger(model, k=4)
    batch = model.vocabulary.batch(airline["test"], with_labels=False)
    features = torch.zeros_like(batch.words)
    values = portable(batch.words, batch.lengths, batch.chars, features)
    outputs = dict(zip(portable.output_names, values, strict=True))
    expected = model.predict(batch, k=4)
    for name in ("tags", "nbest", "intents"):
        assert torch.equal(outputs[name], expected[name]), name
    for name in ("confidence", "nbest_scores", "intent_confidence"):
        torch.testing.assert_close(outputs[name], expected[name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("fmt", "config"),
    [
        ("torchscript", {"head": "crf", "char_encoder": "lstm"}),
        ("torchscript", {"head": "ssvm", "char_encoder": None, "intent_pooling": "last"}),
        ("torchscript", {"head": "softmax", "rnn": "gru", "layers": 2}),
        ("onnx", {"head": "crf", "char_encoder": "lstm"}),
        ("onnx", {"head": "softmax", "rnn": "gru", "layers": 2}),
    ],
)
def test_exported_tagger_tags_like_the_tagger(fmt, config, airline, tmp_path):
    model = _trained(airline["train"], epochs=2, **config)
    texts = _texts(airline["test"]) + ["a", "Denver to BOSTON 1999 on united airlines flight 42"]
    expected = tag_texts(model, model.vocabulary, texts, k=3)
    _assert_same_results(_exported_results(model, fmt, texts, 3, tmp_path), expected)


@pytest.mark.parametrize("corpus", ["atis", "conll2000"])
def test_every_real_test_sentence_is_tagged_alike_after_export(corpus, tmp_path):
    """A briefly trained tagger (CoNLL-2000 with its POS tags) exported to ONNX and to
    TorchScript tags every test sentence of the corpus as the tagger does."""
    real_corpus(corpus)
    data = load_tagging(preset_files(corpus))
    train = data.splits["train"][:1500]
    model = _trained(train, epochs=1, scheme=data.scheme)
    texts = _texts(data.splits["test"])
    expected = tag_texts(model, model.vocabulary, texts)
    for fmt in ("onnx", "torchscript"):
        _assert_same_results(_exported_results(model, fmt, texts, None, tmp_path), expected)


def test_the_runtime_imports_no_torch_and_the_command_tags_with_an_export(airline, tmp_path):
    model = _trained(airline["train"], epochs=1)
    model.save(tmp_path / "crf.pt")
    assert main(["export", "--model", str(tmp_path / "crf.pt"), "--k", "2"]) == 0
    exported = tmp_path / "crf.onnx"
    assert exported.is_file() and (tmp_path / "crf.onnx.json").is_file()
    text = "show me flights from boston to denver"
    script = (
        "import json, sys\n"
        "from hybrid import deploy\n"
        f"results = deploy.load({str(exported)!r}).tag([{text!r}], k=2)\n"
        "assert 'torch' not in sys.modules, 'hybrid.deploy imported torch'\n"
        "print(json.dumps(results))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ}
    )
    assert run.returncode == 0, run.stderr
    expected = tag_texts(model, model.vocabulary, [text], k=2)
    _assert_same_results(json.loads(run.stdout), expected)


def test_tag_command_reads_an_exported_tagger(airline, tmp_path, capsys):
    model = _trained(airline["train"], epochs=1)
    model.save(tmp_path / "crf.pt")
    out = tmp_path / "exported" / "crf.ts"
    assert main(["export", "--model", str(tmp_path / "crf.pt"), "--format", "torchscript",
                 "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    text = "flights from denver to boston"
    assert main(["tag", "--json", "--model", str(out), text]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["tag", "--json", "--model", str(tmp_path / "crf.pt"), text]) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    _assert_same_results(got, expected)


def test_export_errors_are_named(airline, tmp_path, capsys):
    model = _trained(airline["train"], epochs=1)
    model.save(tmp_path / "crf.pt")
    assert main(["export", "--model", str(tmp_path / "crf.pt"), "--format", "torchscript"]) == 0
    exported = tmp_path / "crf.torchscript.pt"
    capsys.readouterr()
    # the n-best taggings were not exported
    assert main(["tag", "--model", str(exported), "--k", "3", "a flight"]) == 2
    assert "exported without n-best" in capsys.readouterr().err
    # the description must travel with the model
    (tmp_path / "crf.torchscript.pt.json").rename(tmp_path / "elsewhere.json")
    with pytest.raises(ValueError, match="crf.torchscript.pt: its description"):
        deploy.describe(exported)
    (tmp_path / "broken.onnx").write_bytes(b"x")
    (tmp_path / "broken.onnx.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.onnx.json: not the JSON description"):
        deploy.load(tmp_path / "broken.onnx")
    (tmp_path / "broken.onnx.json").write_text(json.dumps({"kind": "parser"}))
    with pytest.raises(ValueError, match="not a description written by hybrid export"):
        deploy.load(tmp_path / "broken.onnx")
    assert (
        main(["export", "--model", str(tmp_path / "crf.pt"), "--out", str(tmp_path / "crf.pt")])
        == 2
    )
    assert "is the model itself" in capsys.readouterr().err
    with pytest.raises(ValueError, match="k must be None or an integer >= 1"):
        export_tagger(model, "onnx", tmp_path / "k0.onnx", k=0)
    for text, message in [
        ("5", "not an object"),
        ('{"kind": "tagger", "format": "onnx", "inputs": [], "outputs": []}', "'scheme'"),
    ]:
        (tmp_path / "broken.onnx.json").write_text(text)
        with pytest.raises(ValueError, match=message):
            deploy.load(tmp_path / "broken.onnx")
    description = json.loads((tmp_path / "elsewhere.json").read_text())
    (tmp_path / "broken.onnx.json").write_text(json.dumps({**description, "format": "onnx"}))
    with pytest.raises(ValueError, match="broken.onnx: not an ONNX model"):
        deploy.load(tmp_path / "broken.onnx")
    (tmp_path / "lone.onnx").write_bytes(b"x")
    assert main(["tag", "--model", str(tmp_path / "lone.onnx"), "a flight"]) == 2
    assert "its description lone.onnx.json is missing" in capsys.readouterr().err


def test_the_package_loads_its_parts_on_first_use():
    """``import hybrid`` imports none of its torch modules until a name is asked for, and
    its subpackages are attributes as before."""
    script = (
        "import sys, hybrid\n"
        "assert 'hybrid.nn' not in sys.modules\n"
        "assert hybrid.CRF is hybrid.nn.CRF and hybrid.structured.viterbi\n"
        "import hybrid.tagging\n"
        "assert hybrid.tagging.corpus.Sentence and 'CRF' in dir(hybrid)\n"
        "try:\n"
        "    hybrid.no_such_part\n"
        "except AttributeError as error:\n"
        "    assert 'no_such_part' in str(error)\n"
        "else:\n"
        "    raise AssertionError('hybrid.no_such_part')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
