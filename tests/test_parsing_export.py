"""Exported parsers parse like the parsers they came from.

The oracle is the trained parser itself: a sequence-to-sequence parser decoding greedily
(`Parser.parse` with ``mode="greedy"``), a chart parser with CKY (``mode="cky"``).
`PortableParser` must give the greedy output tokens, and every export to TorchScript and to
ONNX, run by `hybrid.deploy` (onnxruntime, no torch), every sentence's tree. Each model kind
(no attention, attention, attention + word pointer; chart CRF and SSVM) is trained briefly
here (the comparison needs a trained model's scores, not a good one); on real data every test
sentence of the Penn Treebank sample is compared.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from realdata import real_corpus

from hybrid import deploy
from hybrid.cli import main
from hybrid.nn.span_scorer import SpanScorer, SpanScorerConfig
from hybrid.parsing.chart import ChartParser
from hybrid.parsing.data import ParsingVocabulary, collate, inputs_of
from hybrid.parsing.experiment import default_settings, load_corpus, new_parser
from hybrid.parsing.export import PortableParser, export_parser
from hybrid.parsing.parser import Parser, max_lengths
from hybrid.parsing.synthetic import synthetic_trees
from hybrid.parsing.text import encode_sentences
from hybrid.tagging.batching import TaggingVocabulary
from hybrid.tagging.export import export_tagger
from hybrid.tagging.model import Tagger, TaggerConfig
from hybrid.tagging.synthetic import airline_splits

pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated", "ignore::torch.jit.TracerWarning"
)
pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
pytest.importorskip("onnxscript", reason="torch.onnx.export needs onnxscript (dev extra)")

TREES = synthetic_trees(400, seed=3)
#: Short training trees (quick steps, after which every kind of model learns to stop), and
#: test sentences of 3 to 40-odd words.
TRAIN = sorted(TREES[:300], key=lambda tree: len(tree.leaves()))[:200]
TEST = TREES[300:]
#: Per model kind, what else varies: tags, characters, reading order, the attention score and
#: the decoder's depth.
KINDS = {
    "none": {"tags": False, "chars": True, "reverse": True, "layers": 1},
    "attention": {"tags": True, "chars": True, "attention": "additive", "layers": 2},
    "pointer": {"tags": True, "chars": False, "attention": "dot", "layers": 2},
}
SIZES = {"hidden": 32, "word_dim": 16, "target_dim": 16, "char_dim": 8, "char_out": 8}


def _fit(parser, train, steps: int):
    """``parser`` trained ``steps`` steps of 16 trees of ``train`` (Adam), in evaluation
    mode."""
    optimizer = torch.optim.Adam(parser.model.parameters(), lr=1e-2)
    parser.model.train()
    for step in range(steps):
        start = step * 16 % len(train)
        loss = parser.loss(train[start : start + 16])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    parser.model.eval()
    return parser


def _trained(kind: str, train, steps: int = 60, vocabulary_trees=None) -> Parser:
    """A small parser of ``kind`` (`KINDS`), its vocabulary from ``vocabulary_trees`` (else
    ``train``), trained ``steps`` steps of 16 trees of ``train``."""
    options = KINDS[kind]
    vocabulary = ParsingVocabulary.build(
        vocabulary_trees or train, reverse=options.get("reverse", False)
    )
    base = default_settings("synthetic")
    settings = replace(
        base,
        model={**base.model, **SIZES, "decoder_layers": options["layers"]},
        attention=options.get("attention", "general"),
        chars=options["chars"],
    )
    torch.manual_seed(0)
    parser = new_parser(vocabulary, settings, options["tags"], kind)
    return _fit(parser, train, steps)


def _texts(parser: Parser, trees) -> list[str]:
    """The sentences of ``trees`` as ``hybrid parse`` reads them (``word/TAG`` tokens for a
    parser that reads tags)."""
    sentences, tags = inputs_of(trees)
    if not parser.uses_tags:
        return [" ".join(words) for words in sentences]
    return [
        " ".join(f"{w}/{t}" for w, t in zip(words, row, strict=True))
        for words, row in zip(sentences, tags, strict=True)
    ]


def _expected(parser: Parser, trees) -> list[str]:
    """The oracle: the bracketed trees of the parser's greedy decoding."""
    sentences, tags = inputs_of(trees)
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode="greedy")
    return [str(parse.tree) for parse in parses]


@pytest.fixture(scope="module")
def parsers() -> dict[str, Parser]:
    return {kind: _trained(kind, TRAIN) for kind in KINDS}


@pytest.fixture(scope="module")
def exported(parsers, tmp_path_factory):
    """``exported(kind, fmt)``: the path of the parser of ``kind`` exported as ``fmt``
    (written once per module)."""
    folder, written = tmp_path_factory.mktemp("exported"), {}

    def get(kind: str, fmt: str):
        if (kind, fmt) not in written:
            out = folder / f"{kind}.{fmt}"
            model = parsers[kind].model
            model.train()  # as if exported in the middle of training
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                export_parser(parsers[kind], fmt, out)
            # the parser is left as it was: training, trainable, its decoder an LSTM
            assert model.training
            model.eval()
            assert all(p.requires_grad for p in parsers[kind].model.parameters())
            assert isinstance(parsers[kind].model.decoder, torch.nn.LSTM)
            written[kind, fmt] = out
        return written[kind, fmt]

    return get


@pytest.mark.parametrize("kind", list(KINDS))
def test_portable_parser_decodes_like_the_greedy_parser(kind, parsers):
    parser = parsers[kind]
    sentences, tags = inputs_of(TEST)
    expected = parser.parse(sentences, tags if parser.uses_tags else None, mode="greedy")
    batch = parser.batch(sentences, tags)
    with torch.no_grad():
        tokens, counts = PortableParser(parser)(batch.words, batch.lengths, batch.chars, batch.tags)
    targets = parser.vocabulary.targets
    got = [targets.decode(row[:n].tolist()) for row, n in zip(tokens, counts, strict=True)]
    assert got == [parse.tokens for parse in expected]
    assert bool((tokens[:, counts.max() :] == -1).all())
    # the decoding is exercised: some sentences end with </s> before the bound
    assert bool((counts < max_lengths(batch.lengths, parser.max_ratio) - 1).any())


def test_the_encoding_reads_in_order_cuts_characters_and_pads(parsers):
    """`encode_sentences` (which `collate` and the runtime share): each sentence in the
    vocabulary's reading order, characters cut at 20, tags, unknown words, zero padding."""
    words = [["a", "x" * 30, "dog"], ["unseen-word"], ["the", "cat", "saw", "mary", "."]]
    tags = [["DT", "NN", "NN"], ["XYZ"], ["DT", "NN", "VBD", "NNP", "."]]
    for kind in ("none", "attention"):
        vocabulary = parsers[kind].vocabulary
        arrays = encode_sentences(
            words, tags, vocabulary.words, vocabulary.chars, vocabulary.tags, vocabulary.reverse
        )
        assert arrays["words"].shape == (3, 5) and arrays["chars"].shape == (3, 5, 20)
        assert arrays["lengths"].tolist() == [3, 1, 5]
        for b, (sentence, row) in enumerate(zip(words, tags, strict=True)):
            step = -1 if vocabulary.reverse else 1
            ordered, ordered_tags, n = sentence[::step], row[::step], len(sentence)
            assert arrays["words"][b].tolist() == [
                *(vocabulary.words.encode([w])[0] for w in ordered),
                *[0] * (5 - n),
            ]
            assert arrays["tags"][b].tolist() == [
                *(vocabulary.tags.encode([t])[0] for t in ordered_tags),
                *[0] * (5 - n),
            ]
            for i, word in enumerate(ordered):
                spelled = [vocabulary.chars.encode([c])[0] for c in word[:20]]
                assert arrays["chars"][b, i].tolist() == spelled + [0] * (20 - len(spelled))
            assert not arrays["chars"][b, n:].any()
        batch = collate(vocabulary, words, tags)
        assert np.array_equal(batch.chars.numpy(), arrays["chars"])


def test_a_copy_given_another_model_decodes_with_it(parsers):
    """The weight average decodes through a copy of the parser holding the averaged model:
    the copy must decode as a parser built on that model."""
    parser = parsers["attention"]
    other = copy.deepcopy(parser.model)
    with torch.no_grad():
        for weight in other.parameters():
            weight.add_(0.5 * torch.randn_like(weight))
    shifted = copy.copy(parser)
    shifted.model = other
    sentences, tags = inputs_of(TEST[:20])
    fresh = Parser(other, parser.vocabulary, parser.max_ratio)
    assert [p.tokens for p in shifted.parse(sentences, tags, mode="greedy")] == [
        p.tokens for p in fresh.parse(sentences, tags, mode="greedy")
    ]
    assert [p.tokens for p in shifted.parse(sentences, tags, mode="greedy")] != [
        p.tokens for p in parser.parse(sentences, tags, mode="greedy")
    ]


def test_ties_and_the_length_bound_decode_alike(parsers, tmp_path):
    """Every step ties two tokens and never offers </s>: greedy decoding takes the lower of
    the two up to the length bound, eagerly, in the portable module and through ONNX."""
    parser = copy.deepcopy(parsers["none"])
    targets = parser.vocabulary.targets
    first, second = [i for i, t in enumerate(targets.tokens) if t not in targets.specials][:2]
    with torch.no_grad():
        parser.model.output.weight.zero_()
        parser.model.output.bias.fill_(-5.0)
        parser.model.output.bias[[first, second]] = 0.0
        parser.model.output.bias[parser.vocabulary.eos] = -30.0
    sentences, tags = inputs_of(TEST[:5])
    bounds = max_lengths(torch.tensor([len(s) for s in sentences]), parser.max_ratio)
    parses = parser.parse(sentences, tags if parser.uses_tags else None, mode="greedy")
    assert [p.tokens for p in parses] == [[targets.tokens[first]] * int(n) for n in bounds]
    out = tmp_path / "tied.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_parser(parser, "onnx", out)
    assert deploy.load(out).parse(_texts(parser, TEST[:5])) == [str(p.tree) for p in parses]


def _chart(objective: str, train, steps: int = 30, tags: bool = True, vocabulary_trees=None):
    """A small chart parser (``objective``: ``crf`` or ``ssvm``) trained ``steps`` steps of
    16 trees of ``train``."""
    vocabulary = ParsingVocabulary.build(vocabulary_trees or train)
    base = default_settings("synthetic")
    settings = replace(base, model={**base.model, **SIZES}, chars=True)
    torch.manual_seed(0)
    parser = new_parser(vocabulary, settings, tags, f"chart-{objective}")
    return _fit(parser, train, steps)


@pytest.mark.parametrize(
    ("objective", "tags", "fmt"),
    [("crf", True, "onnx"), ("ssvm", True, "torchscript"), ("crf", False, "torchscript")],
)
def test_exported_chart_parser_parses_like_its_cky(objective, tags, fmt, tmp_path):
    """A chart parser exports with its CKY: the best tree of every sentence, as the saved
    parser's ``cky`` mode gives it, in batches of 1 to 64 sentences (one-word sentences, a
    batch of them alone, and unknown words among them); the parser is left as it was."""
    parser = _chart(objective, TRAIN, tags=tags)
    parser.model.train()  # as if exported in the middle of training
    out = tmp_path / f"chart.{fmt}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_parser(parser, fmt, out)
    assert parser.model.training
    parser.model.eval()
    exported = deploy.load(out)
    assert exported.decoder == "cky"
    texts = _texts(parser, TEST)
    odd = ["zebra/NN", "the/DT"] if parser.uses_tags else ["zebra", "the"]
    for chosen in ([texts[0]], odd, [odd[0], *texts[1:7]], texts[7:71]):
        split = [[token.rpartition("/") for token in text.split()] for text in chosen]
        sentences = [[w if parser.uses_tags else t for w, _, t in row] for row in split]
        row_tags = [[t for _, _, t in row] for row in split] if parser.uses_tags else None
        expected = [str(p.tree) for p in parser.parse(sentences, row_tags, mode="cky")]
        assert exported.parse(chosen) == expected, chosen[:2]


def test_the_span_scorer_scores_alike_when_recorded():
    """While a graph is recorded the span scorer scores every fencepost pair (no shape may
    depend on the sentence); traced on 3 words, it gives the listed spans' scores, to the
    last bit, for a wider ragged batch with a one-word sentence."""
    vocabulary = ParsingVocabulary.build(TRAIN[:50])
    config = SpanScorerConfig(
        num_words=len(vocabulary.words), num_labels=len(vocabulary.labels), hidden=16,
        word_dim=8, span_hidden=12,
    )  # fmt: skip
    torch.manual_seed(0)
    scorer = SpanScorer(config).double().eval()
    with torch.no_grad():
        for parameter in scorer.parameters():
            parameter.normal_()
    words = torch.randint(2, len(vocabulary.words), (4, 7))
    lengths = torch.tensor([7, 1, 4, 6])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(scorer, (words[:2, :3], torch.tensor([3, 2])), check_trace=False)
    with torch.no_grad():
        assert torch.equal(traced(words, lengths), scorer(words, lengths))


def test_the_commands_export_a_chart_parser_and_parse_with_it(tmp_path, capsys):
    parser = _chart("crf", TRAIN, steps=10)
    parser.save(tmp_path / "chart.pt")
    assert main(["export", "--model", str(tmp_path / "chart.pt"), "--format", "torchscript"]) == 0
    texts = _texts(parser, TEST[:8])
    capsys.readouterr()
    assert main(["parse", "--model", str(tmp_path / "chart.pt"), *texts]) == 0
    saved = capsys.readouterr().out
    exported = str(tmp_path / "chart.torchscript.pt")
    assert main(["parse", "--model", exported, *texts]) == 0
    assert capsys.readouterr().out == saved
    assert main(["parse", "--model", exported, "--decoder", "mbr", *texts]) == 2
    assert "decodes with cky only (--decoder cky)" in capsys.readouterr().err


def test_the_package_finds_the_chart_parser_without_being_told(tmp_path):
    """`BaseParser.load` reads a chart parser in a process that never imported
    `hybrid.parsing.chart` (the package loads its names on first use)."""
    vocabulary = ParsingVocabulary.build(TRAIN[:50])
    config = SpanScorerConfig(num_words=len(vocabulary.words), num_labels=len(vocabulary.labels))
    ChartParser(SpanScorer(config), vocabulary).save(tmp_path / "chart.pt")
    script = (
        "import sys\n"
        "from hybrid.parsing import BaseParser\n"
        "assert 'hybrid.parsing.chart' not in sys.modules\n"
        f"print(type(BaseParser.load({str(tmp_path / 'chart.pt')!r})).__name__)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ChartParser"


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("none", "torchscript"),
        ("attention", "torchscript"),
        ("pointer", "torchscript"),
        ("none", "onnx"),
        ("pointer", "onnx"),
    ],
)
def test_exported_parser_parses_like_the_parser(kind, fmt, parsers, exported):
    """Ragged batches of 1 to 64 sentences (a one-word sentence and unknown words among
    them) get the trees of the greedy parser."""
    parser, runtime = parsers[kind], deploy.load(exported(kind, fmt))
    texts = _texts(parser, TEST)
    odd = "zebra/NN" if parser.uses_tags else "zebra"
    for chosen in (texts[:1], [odd, *texts[1:3]], texts[3:67]):
        sentences = [text.split() for text in chosen]
        words = [[token.rpartition("/")[0] for token in s] for s in sentences]
        tags = [[token.rpartition("/")[2] for token in s] for s in sentences]
        parses = (
            parser.parse(words, tags, mode="greedy")
            if parser.uses_tags
            else parser.parse(sentences, mode="greedy")
        )
        assert runtime.parse(chosen) == [str(parse.tree) for parse in parses]


def test_every_ptb_sample_test_sentence_parses_alike_after_export(tmp_path):
    """A parser trained briefly on the PTB sample's training trees (words, tags and
    characters, attention), exported to ONNX and to TorchScript, parses every test sentence
    of the sample as it does; so does a chart parser exported to ONNX."""
    folder = real_corpus("ptb_sample")
    train, _, test = load_corpus("ptb", str(folder.parent))
    parser = _trained("attention", train, steps=12)
    expected, texts = _expected(parser, test), _texts(parser, test)
    assert len(texts) == len(test) > 100
    for fmt in ("onnx", "torchscript"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_parser(parser, fmt, tmp_path / f"ptb.{fmt}")
        assert deploy.load(tmp_path / f"ptb.{fmt}").parse(texts) == expected, fmt
    # a chart parser (tree CRF) trained as briefly, through ONNX
    chart = _chart("crf", train, steps=12)
    sentences, tags = inputs_of(test)
    expected = [str(p.tree) for p in chart.parse(sentences, tags, mode="cky")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_parser(chart, "onnx", tmp_path / "chart.onnx")
    assert deploy.load(tmp_path / "chart.onnx").parse(_texts(chart, test)) == expected


def test_the_runtime_imports_no_torch(parsers, exported):
    parser, path = parsers["none"], exported("none", "onnx")
    texts = _texts(parser, TEST[:5])
    script = (
        "import json, sys\n"
        "from hybrid import deploy\n"
        f"trees = deploy.load({str(path)!r}).parse({texts!r})\n"
        "assert 'torch' not in sys.modules, 'hybrid.deploy imported torch'\n"
        "print(json.dumps(trees))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env={**os.environ}
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == _expected(parser, TEST[:5])


def test_parse_command_reads_an_exported_parser(parsers, tmp_path, capsys):
    parser = parsers["attention"]
    parser.save(tmp_path / "parser.pt")
    out = tmp_path / "exported" / "parser.ts"
    assert main(["export", "--model", str(tmp_path / "parser.pt"), "--format", "torchscript",
                 "--out", str(out)]) == 0  # fmt: skip
    assert json.loads((tmp_path / "exported" / "parser.ts.json").read_text())["kind"] == "parser"
    capsys.readouterr()
    texts = _texts(parser, TEST[:6])
    assert main(["parse", "--model", str(out), *texts]) == 0
    got = capsys.readouterr().out.splitlines()
    saved = str(tmp_path / "parser.pt")
    assert main(["parse", "--model", saved, "--decoder", "greedy", *texts]) == 0
    assert got == capsys.readouterr().out.splitlines() == _expected(parser, TEST[:6])


def test_parser_export_errors_are_named(parsers, exported, tmp_path, capsys):
    path = exported("attention", "torchscript")
    # only the greedy decoder is exported
    assert main(["parse", "--model", str(path), "--decoder", "beam", "the/DT dog/NN"]) == 2
    assert "decodes with greedy only (--decoder greedy)" in capsys.readouterr().err
    # a parser that reads tags needs them, named by the argument
    assert main(["parse", "--model", str(path), "the/DT dog/NN", "the dog"]) == 2
    assert "argument 2: this parser reads POS tags" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"sentences\[1\]: expected a sentence"):
        deploy.load(path).parse(["the/DT dog/NN", "  "])
    with pytest.raises(ValueError, match="sentences must be an iterable of strings"):
        deploy.load(path).parse("the/DT dog/NN")
    # another kind of exported model
    airline = airline_splits(train=40, valid=10, test=10, seed=5)
    tagger = Tagger(TaggerConfig(word_dim=8, hidden=8), TaggingVocabulary.build(airline["train"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_tagger(tagger, "torchscript", tmp_path / "tagger.ts")
    assert main(["parse", "--model", str(tmp_path / "tagger.ts"), "a flight"]) == 2
    assert "is an exported tagger; expected an exported parser" in capsys.readouterr().err
    # the description must be one hybrid export writes for a parser
    description = json.loads(path.with_name(path.name + ".json").read_text())
    (tmp_path / "broken.ts").write_bytes(path.read_bytes())
    del description["uses_tags"]
    (tmp_path / "broken.ts.json").write_text(json.dumps(description))
    with pytest.raises(ValueError, match=r"broken.ts.json: not a description .*'uses_tags'"):
        deploy.load(tmp_path / "broken.ts")
    # only parsers, in the formats hybrid export writes
    with pytest.raises(ValueError, match="must be a Parser or a ChartParser"):
        export_parser(parsers["none"].model, "onnx", tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="must be a sequence-to-sequence Parser"):
        PortableParser(_chart("crf", TRAIN, steps=1))
    with pytest.raises(ValueError, match="format must be one of"):
        export_parser(parsers["none"], "pdf", tmp_path / "parser.pdf")
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "parser.pdf").exists()
