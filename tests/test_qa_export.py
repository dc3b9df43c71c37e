"""Exported readers answer like the readers they came from.

The oracle is the trained reader itself (`Reader` on `collate`'s batch, and `answer_stories`):
its export to TorchScript and to ONNX, run by `hybrid.deploy` (onnxruntime, no torch), must
give every story the same answer and the same most-attended statement per hop, with
confidences and attention weights within 1e-4, whatever the batch the story is read in. On
real data every test question of bAbI task 1 is compared, with a reader trained briefly here
(the comparison needs a trained model's scores, not a good one).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace

import pytest
import torch
from realdata import real_corpus

from hybrid import deploy
from hybrid.cli import main
from hybrid.qa import QAVocabulary, collate, read_babi, task_file
from hybrid.qa.export import PortableReader, export_reader
from hybrid.qa.inference import answer_stories
from hybrid.qa.model import Reader, ReaderConfig
from hybrid.qa.synthetic import generate_stories
from hybrid.qa.text import encode_questions
from hybrid.qa.train import QATrainConfig, fit
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.export import export_tagger
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated", "ignore::torch.jit.TracerWarning"
)
pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")

#: Memory slots of the synthetic readers: stories of up to 15 statements are cut to it.
MEMORY = 10

#: Stories with what the generated ones lack: more statements than the memory keeps, capitals
#: and punctuation, words never seen in training, a single statement.
ODD_STORIES = [
    ([f"anna walked to the {place}" for place in ("attic", "porch") * 7], "where is anna"),
    (["Bruno RAN to the cellar!", "chen went back to the zebra", "dora hurried"], "Where is chen?"),
    (["the quokka sat"], "where is the quokka"),
]


def _trained(questions, kind="memory", epochs=1, memory_size=MEMORY) -> Reader:
    vocabulary = QAVocabulary.build(questions)
    longest = max(len(s) for q in questions for s in (*q.story, q.question))
    config = ReaderConfig(
        kind=kind, dim=16, hidden=16, memory_size=memory_size, sentence_size=longest
    )
    torch.manual_seed(0)
    reader = Reader(config, vocabulary)
    data = collate(questions, vocabulary, memory_size)
    settings = QATrainConfig(epochs=epochs, linear_start_epochs=1, batch_size=32)
    fit(reader, data, data, settings, progress=False, log=lambda _: None)
    return reader.eval()


def _stories(questions) -> list[tuple[list[str], str]]:
    return [([" ".join(s) for s in q.story], " ".join(q.question)) for q in questions]


def _assert_same_answers(got: list[dict], expected: list[dict]) -> None:
    """Same answers and most-attended statements; confidences and weights within 1e-4."""
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.keys() == e.keys()
        assert g["answer"] == e["answer"]
        assert [s for s, _ in g["attended"]] == [s for s, _ in e["attended"]]
        assert g["confidence"] == pytest.approx(e["confidence"], abs=1e-4)
        weights = [w for _, w in g["attended"]]
        assert weights == pytest.approx([w for _, w in e["attended"]], abs=1e-4)


def _export(reader: Reader, fmt: str, folder) -> object:
    out = folder / f"reader.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_reader(reader, fmt, out)
    return out


@pytest.fixture(scope="module")
def synthetic():
    """A memory network trained briefly on generated stories, and stories to answer."""
    reader = _trained(generate_stories(300, seed=0))
    return reader, _stories(generate_stories(270, seed=3)) + ODD_STORIES


@pytest.fixture(scope="module")
def exported(synthetic, tmp_path_factory):
    """The synthetic memory network exported to each format: ``{format: file}``."""
    folder = tmp_path_factory.mktemp("exported")
    return {fmt: _export(synthetic[0], fmt, folder) for fmt in ("onnx", "torchscript")}


@pytest.mark.parametrize("kind", ["memory", "attentive", "lstm"])
def test_portable_reader_answers_like_the_reader(kind):
    """The portable module on `encode_questions`' arrays gives the answers, probabilities
    and attention of the reader on `collate`'s batch of the same questions."""
    questions = generate_stories(80, seed=1)
    torch.manual_seed(1)
    config = ReaderConfig(kind=kind, dim=12, hidden=12, memory_size=MEMORY, sentence_size=6)
    reader = Reader(config, QAVocabulary.build(generate_stories(120, seed=2))).eval()
    arrays = encode_questions(questions, reader.vocabulary.words, MEMORY)
    portable = PortableReader(reader)
    with torch.no_grad():
        values = portable(*(torch.from_numpy(arrays[name]) for name in portable.input_names))
        logits, attention = reader(collate(questions, reader.vocabulary, MEMORY))
    outputs = dict(zip(portable.output_names, values, strict=True))
    probabilities = logits.softmax(-1)
    assert torch.equal(outputs["answer"], probabilities.argmax(-1))
    torch.testing.assert_close(outputs["confidence"], probabilities.max(-1).values)
    hops = {"memory": config.hops, "attentive": 1, "lstm": 0}[kind]
    assert outputs["attention"].shape == (len(questions), hops, arrays["memory"].shape[1])
    if attention is not None:
        torch.testing.assert_close(outputs["attention"], attention)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_reader_answers_like_the_reader_in_ragged_batches(fmt, synthetic, exported):
    """Stories read in batches of 1 to 64 (so padded to other sizes than the reader's one
    batch of all of them) get the reader's answers."""
    reader, stories = synthetic
    expected = list(answer_stories(reader, reader.vocabulary, stories))
    exported_reader = deploy.load(exported[fmt], kind="reader")
    got, start = [], 0
    for size in (1, 2, 3, 5, 8, 13, 21, 34, 55, 64, 64, 3):
        got.extend(exported_reader.answer_stories(stories[start : start + size]))
        start += size
    assert start == len(stories)
    _assert_same_answers(got, expected)
    # a trained model's answers, several of them, the odd stories' too
    assert len({e["answer"] for e in expected}) > 2
    _assert_same_answers([exported_reader.answer(*ODD_STORIES[0])], [expected[-3]])


@pytest.mark.parametrize("kind", ["attentive", "lstm"])
def test_the_lstm_readers_export_to_torchscript(kind, tmp_path):
    questions = generate_stories(160, seed=0)
    reader = _trained(questions, kind=kind)
    stories = _stories(generate_stories(40, seed=4)) + ODD_STORIES
    expected = list(answer_stories(reader, reader.vocabulary, stories))
    got = list(deploy.load(_export(reader, "torchscript", tmp_path)).answer_stories(stories))
    _assert_same_answers(got, expected)


def test_every_babi_task1_test_question_is_answered_alike_after_export(tmp_path):
    """A memory network trained briefly on bAbI task 1, exported to ONNX and to
    TorchScript, answers every test question as the reader does."""
    folder = real_corpus("babi") / "en"
    reader = _trained(read_babi(task_file(folder, 1, "train")), epochs=2, memory_size=50)
    stories = _stories(read_babi(task_file(folder, 1, "test")))
    assert len(stories) == 1000
    expected = list(answer_stories(reader, reader.vocabulary, stories))
    assert len({e["answer"] for e in expected}) > 2
    for fmt in ("onnx", "torchscript"):
        got = list(deploy.load(_export(reader, fmt, tmp_path)).answer_stories(stories))
        _assert_same_answers(got, expected)


def test_the_runtime_answers_without_torch(synthetic, exported):
    reader, _ = synthetic
    story, question = ODD_STORIES[1]
    script = (
        "import json, sys\n"
        "from hybrid import deploy\n"
        f"result = deploy.load({str(exported['onnx'])!r}).answer({story!r}, {question!r})\n"
        "assert 'torch' not in sys.modules, 'hybrid.deploy imported torch'\n"
        "print(json.dumps(result))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ}
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    result["attended"] = [tuple(pair) for pair in result["attended"]]
    _assert_same_answers(
        [result], list(answer_stories(reader, reader.vocabulary, [ODD_STORIES[1]]))
    )


def test_answer_command_reads_an_exported_reader(synthetic, tmp_path, monkeypatch, capsys):
    reader, stories = synthetic
    reader.save(tmp_path / "reader.pt")
    out = tmp_path / "exported" / "reader.ts"
    assert main(["export", "--model", str(tmp_path / "reader.pt"), "--format", "torchscript",
                 "--out", str(out)]) == 0  # fmt: skip
    assert json.loads((tmp_path / "exported" / "reader.ts.json").read_text())["kind"] == "reader"
    text = "\n\n".join("\n".join([*story, question]) for story, question in stories[:20])
    printed = []
    for model in (out, tmp_path / "reader.pt"):
        monkeypatch.setattr("sys.stdin", io.StringIO(text))
        capsys.readouterr()
        assert main(["answer", "--model", str(model)]) == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1] and printed[0].count("answer: ") == 20


def test_export_and_answer_errors_are_named(synthetic, exported, tmp_path, monkeypatch, capsys):
    reader, _ = synthetic
    reader.save(tmp_path / "reader.pt")
    # n-best taggings are a tagger's
    assert main(["export", "--model", str(tmp_path / "reader.pt"), "--k", "3"]) == 2
    assert "--k: n-best taggings are exported with taggers" in capsys.readouterr().err
    # an exported tagger is not a reader
    sentences = airline_splits(train=20, valid=5, test=5, seed=0)["train"]
    tagger = Tagger(
        TaggerConfig(word_dim=8, hidden=8, char_encoder=None), TaggingVocabulary.build(sentences)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_tagger(tagger, "torchscript", tmp_path / "tagger.ts")
    monkeypatch.setattr("sys.stdin", io.StringIO("anna went to the attic\nwhere is anna\n"))
    assert main(["answer", "--model", str(tmp_path / "tagger.ts")]) == 2
    assert "tagger.ts is an exported tagger; expected an exported reader" in capsys.readouterr().err
    # the description must hold what the runtime needs
    description = json.loads(exported["onnx"].with_name("reader.onnx.json").read_text())
    (tmp_path / "broken.onnx").write_bytes(exported["onnx"].read_bytes())
    for key in ("memory_size", "vocabulary"):
        broken = {k: v for k, v in description.items() if k != key}
        (tmp_path / "broken.onnx.json").write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=f"broken.onnx.json: .*'{key}' missing"):
            deploy.load(tmp_path / "broken.onnx")
    with pytest.raises(ValueError, match="stories\\[1\\]: the question has no words"):
        list(deploy.load(exported["onnx"]).answer_stories([(["a b"], "q"), (["a b"], "?!")]))
    # a story with nothing to read is refused alike, eagerly and exported
    wordless = [(["a b"], "q"), (["?", "!"], "where is a")]
    for answer in (
        deploy.load(exported["onnx"]).answer_stories,
        lambda stories: answer_stories(reader, reader.vocabulary, stories),
    ):
        with pytest.raises(ValueError, match="stories\\[1\\]: its 2 most recent statements"):
            list(answer(wordless))
    with pytest.raises(ValueError, match="format must be one of"):
        export_reader(reader, "tflite", tmp_path / "reader.tflite")
    one_slot = Reader(replace(reader.config, memory_size=1), reader.vocabulary)
    with pytest.raises(ValueError, match="memory_size must be at least 2 to export"):
        export_reader(one_slot, "onnx", tmp_path / "one.onnx")
