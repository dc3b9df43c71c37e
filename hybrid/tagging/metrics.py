"""Tagging metrics: chunk (span) scores for BIO, BIOES and IOB1 tags, identical to seqeval's
strict mode, and token scores for plain labels (POS tags and other labels without spans).

A chunk counts only when it is well-formed in its scheme (CoNLL "strict" span F1):

* BIO (IOB2): ``B-X`` followed by the longest run of ``I-X``. An ``I-X`` that does not
  continue a ``B-X``/``I-X`` chunk (after ``O``, at the start, or after another type) is
  not part of any chunk; the default conlleval mode would open a chunk there instead.
* BIOES (IOBES): ``S-X``, or ``B-X I-X* E-X``. A fragment (``B-X I-X`` not closed by
  ``E-X``, a lone ``I-X`` or ``E-X``) is not a chunk; the scan resumes at the tag that
  broke it, so in ``B-X I-X S-X`` the ``S-X`` still counts.
* IOB1 (CoNLL-2000 and -2003 as first released): ``I-X`` opens a chunk unless it continues
  one of type ``X``; ``B-X`` opens one right after another chunk of type ``X``. Scored as
  its exact BIO rewrite (`iob1_to_bio`), as conlleval reads it.

Precision, recall and F1 are micro-averaged over chunks, per label as well; the values
equal those of ``seqeval.metrics.classification_report(gold, predicted, mode="strict",
scheme=IOB2 | IOBES)``. Unlike seqeval, labels must be exactly ``"O"`` or ``"P-TYPE"``
with a one-letter prefix ``P`` of the scheme (seqeval also reads ``"B"`` as type ``"_"``
and ``"Bfoo"`` as ``B-foo``).

Plain labels (`label_scores`) are scored token by token: accuracy, and precision, recall and
F1 of each label (a token predicted ``NN`` is a true positive of ``NN`` when its gold label is
``NN``, else a false positive of ``NN`` and a false negative of its gold label).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .schemes import split_tag

__all__ = [
    "bio_to_bioes",
    "bioes_to_bio",
    "extract_spans",
    "iob1_to_bio",
    "label_scores",
    "span_scores",
]

_SCHEMES = {"BIO": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IOBES": "BIOES", "IOB1": "IOB1"}
_PREFIXES = {"BIO": "BI", "BIOES": "BIES", "IOB1": "BI"}


def _scheme(scheme: str) -> str:
    name = _SCHEMES.get(str(scheme).upper())
    if name is None:
        raise ValueError(f"scheme must be one of {sorted(_SCHEMES)}, got {scheme!r}")
    return name


def _parse(tags: Sequence[str], scheme: str, name: str) -> list[tuple[str, str]]:
    """``[(prefix, type)]`` with ``("O", "")`` for ``O``; ValueError naming ``name[i]``."""
    if isinstance(tags, str):
        raise ValueError(f"{name} must be a sequence of tag strings, not a single string")
    prefixes = _PREFIXES[scheme]
    parsed = []
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise ValueError(f"{name}[{i}] must be a string, got {type(tag).__name__}")
        try:
            parsed.append(split_tag(tag, prefixes))
        except ValueError as err:
            raise ValueError(f"{name}[{i}] is not a {scheme} tag: {err}") from None
    return parsed


def bio_to_bioes(tags: Sequence[str]) -> list[str]:
    """Rewrite BIO (IOB2) tags as BIOES: a chunk's last tag becomes ``E-X``, or ``S-X``
    when the chunk has one token.

    The rewrite is local (``B-X``/``I-X`` become ``S-X``/``E-X`` unless the next tag is
    ``I-X``), so `bioes_to_bio` inverts it for every input, and ill-formed input keeps its
    strict chunks: ``extract_spans(tags, "BIO") == extract_spans(bio_to_bioes(tags),
    "BIOES")``.

    Args:
        tags: ``L`` tags, each ``"O"``, ``"B-X"`` or ``"I-X"``.

    Returns:
        ``L`` BIOES tags.

    Raises:
        ValueError: naming the position of a tag outside the BIO scheme.
    """
    parsed = _parse(tags, "BIO", "tags")
    out = []
    for i, (prefix, kind) in enumerate(parsed):
        if prefix == "O":
            out.append("O")
            continue
        continues = i + 1 < len(parsed) and parsed[i + 1] == ("I", kind)
        if prefix == "B":
            out.append(f"B-{kind}" if continues else f"S-{kind}")
        else:
            out.append(f"I-{kind}" if continues else f"E-{kind}")
    return out


def bioes_to_bio(tags: Sequence[str]) -> list[str]:
    """Rewrite BIOES (IOBES) tags as BIO: ``E-X`` becomes ``I-X``, ``S-X`` becomes ``B-X``.

    Inverts `bio_to_bioes` on well-formed sequences. On ill-formed input the mapping is still
    tag by tag, so strict chunks may change (a fragment ``B-X I-X`` becomes a BIO chunk).

    Args:
        tags: ``L`` tags, each ``"O"`` or ``"B-X"``, ``"I-X"``, ``"E-X"``, ``"S-X"``.

    Returns:
        ``L`` BIO tags.

    Raises:
        ValueError: naming the position of a tag outside the BIOES scheme.
    """
    mapping = {"O": "O", "B": "B", "I": "I", "E": "I", "S": "B"}
    return ["O" if p == "O" else f"{mapping[p]}-{k}" for p, k in _parse(tags, "BIOES", "tags")]


def _iob1_as_bio(parsed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """IOB1 tags rewritten as BIO: an ``I-X`` that continues no chunk of type ``X`` opens
    one (``B-X``); every other tag stays."""
    out = []
    for i, (prefix, kind) in enumerate(parsed):
        continues = i > 0 and parsed[i - 1][0] in "BI" and parsed[i - 1][1] == kind
        out.append(("B", kind) if prefix == "I" and not continues else (prefix, kind))
    return out


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """Rewrite IOB1 tags as BIO (IOB2): each chunk starts with ``B-X``.

    The chunks stay the same: ``extract_spans(tags, "IOB1") == extract_spans(iob1_to_bio(tags),
    "BIO")``.

    Args:
        tags: ``L`` tags, each ``"O"``, ``"B-X"`` or ``"I-X"``.

    Returns:
        ``L`` BIO tags.

    Raises:
        ValueError: naming the position of a tag outside the IOB1 scheme.
    """
    return ["O" if p == "O" else f"{p}-{k}" for p, k in _iob1_as_bio(_parse(tags, "IOB1", "tags"))]


def _spans(parsed: list[tuple[str, str]], scheme: str) -> list[tuple[str, int, int]]:
    if scheme == "IOB1":
        parsed, scheme = _iob1_as_bio(parsed), "BIO"
    spans = []
    n = len(parsed)
    i = 0
    while i < n:
        prefix, kind = parsed[i]
        if prefix not in ("B", "S"):
            i += 1
            continue
        if prefix == "S":  # only in BIOES
            spans.append((kind, i, i + 1))
            i += 1
            continue
        end = i + 1
        while end < n and parsed[end] == ("I", kind):
            end += 1
        if scheme == "BIO":
            spans.append((kind, i, end))
            i = end
        elif end < n and parsed[end] == ("E", kind):
            spans.append((kind, i, end + 1))
            i = end + 1
        else:  # an unclosed BIOES fragment: resume at the tag that broke it
            i = end
    return spans


def extract_spans(tags: Sequence[str], scheme: str = "BIO") -> list[tuple[str, int, int]]:
    """The well-formed chunks of one tag sequence (seqeval strict mode).

    Args:
        tags: ``L`` tag strings.
        scheme: ``"BIO"`` (alias ``"IOB2"``), ``"BIOES"`` (alias ``"IOBES"``) or
            ``"IOB1"``, case-insensitive.

    Returns:
        ``(label, start, end)`` with ``end`` exclusive, in order of ``start``.

    Raises:
        ValueError: for an unknown scheme or, naming its position, a tag outside the scheme.

    Example:
        >>> extract_spans(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
        [('PER', 0, 2), ('LOC', 4, 5)]
    """
    name = _scheme(scheme)
    return _spans(_parse(tags, name, "tags"), name)


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def span_scores(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    scheme: str = "BIO",
) -> dict[str, Any]:
    """Strict span precision, recall and F1 of predicted tags against gold tags.

    A predicted chunk is correct when a gold chunk of the same sentence has the same label,
    start and end. Scores are fractions in ``[0, 1]`` (multiply by 100 for the usual
    CoNLL figures); a ratio with a zero denominator is ``0.0``.

    Args:
        gold: ``N`` sentences of gold tags.
        predicted: ``N`` sentences of predicted tags, each as long as its gold sentence.
        scheme: ``"BIO"``/``"IOB2"``, ``"BIOES"``/``"IOBES"`` or ``"IOB1"``.

    Returns:
        A dict with ``"precision"``, ``"recall"``, ``"f1"`` (micro-averaged over chunks),
        ``"support"`` (number of gold chunks), ``"token_accuracy"`` (fraction of tokens whose
        tag equals the gold tag) and ``"per_label"``: ``{label: {"precision", "recall",
        "f1", "support"}}`` for every label with a gold or a predicted chunk, sorted by label.

    Raises:
        ValueError: for an unknown scheme, when ``gold`` and ``predicted`` have different
            numbers of sentences or a sentence has different lengths, or for a tag outside
            the scheme (naming its position).
    """
    name = _scheme(scheme)
    counts = _Counts()
    for i, (g, p) in enumerate(_pairs(gold, predicted)):
        g_parsed = _parse(g, name, f"gold[{i}]")
        p_parsed = _parse(p, name, f"predicted[{i}]")
        counts.count_tokens(g, p)
        g_spans = set(_spans(g_parsed, name))
        p_spans = set(_spans(p_parsed, name))
        counts.gold.update(label for label, _, _ in g_spans)
        counts.predicted.update(label for label, _, _ in p_spans)
        counts.correct.update(label for label, _, _ in g_spans & p_spans)
    return counts.scores()


def label_scores(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Token scores of plain labels (POS tags, or any labels without chunks).

    Scores are fractions in ``[0, 1]``; a ratio with a zero denominator is ``0.0``.

    Args:
        gold: ``N`` sentences of gold labels.
        predicted: ``N`` sentences of predicted labels, each as long as its gold sentence.

    Returns:
        The keys of `span_scores`, counted over tokens: ``"token_accuracy"``;
        ``"precision"``, ``"recall"`` and ``"f1"`` micro-averaged over tokens (each equal to
        the accuracy, as every token has one gold and one predicted label); ``"support"``
        (tokens); and ``"per_label"`` ``{label: {"precision", "recall", "f1", "support"}}``
        for every gold or predicted label, sorted.

    Raises:
        ValueError: when ``gold`` and ``predicted`` have different numbers of sentences, a
            sentence has different lengths, or a label is not a string (naming it).
    """
    counts = _Counts()
    for i, (g, p) in enumerate(_pairs(gold, predicted)):
        for name, labels in ((f"gold[{i}]", g), (f"predicted[{i}]", p)):
            for j, label in enumerate(labels):
                if not isinstance(label, str):
                    raise ValueError(f"{name}[{j}] must be a string, got {type(label).__name__}")
        counts.count_tokens(g, p)
        counts.gold.update(g)
        counts.predicted.update(p)
        counts.correct.update(a for a, b in zip(g, p, strict=True) if a == b)
    return counts.scores()


def _pairs(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> Iterator[tuple[Sequence[str], Sequence[str]]]:
    """The ``(gold, predicted)`` sentences, checked to pair up."""
    for arg, value in (("gold", gold), ("predicted", predicted)):
        if isinstance(value, str):
            raise ValueError(f"{arg} must be a list of tag sequences, not a string")
    if len(gold) != len(predicted):
        raise ValueError(
            f"gold and predicted must have the same number of sentences, "
            f"got {len(gold)} and {len(predicted)}"
        )
    for i, (g, p) in enumerate(zip(gold, predicted, strict=True)):
        for arg, value in ((f"gold[{i}]", g), (f"predicted[{i}]", p)):
            if isinstance(value, str):
                raise ValueError(f"{arg} must be a sequence of tag strings, not a single string")
        if len(g) != len(p):
            raise ValueError(
                f"gold[{i}] and predicted[{i}] must have the same length, got {len(g)} and {len(p)}"
            )
        yield g, p


@dataclass
class _Counts:
    """Gold, predicted and correct units (chunks or tokens) per label, and token agreement."""

    gold: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    same: int = 0

    def count_tokens(self, gold: Sequence[str], predicted: Sequence[str]) -> None:
        self.tokens += len(gold)
        self.same += sum(a == b for a, b in zip(gold, predicted, strict=True))

    def scores(self) -> dict[str, Any]:
        per_label = {}
        for label in sorted(self.gold.keys() | self.predicted.keys()):
            precision, recall, f1 = _prf(
                self.correct[label], self.predicted[label], self.gold[label]
            )
            per_label[label] = {
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "support": self.gold[label],
            }
        precision, recall, f1 = _prf(
            self.correct.total(), self.predicted.total(), self.gold.total()
        )
        return {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": self.gold.total(),
            "token_accuracy": self.same / self.tokens if self.tokens else 0.0,
            "per_label": per_label,
        }
