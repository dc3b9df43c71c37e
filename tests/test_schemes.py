"""allowed_transitions: scheme constraints against rule tables written from the definitions."""

from __future__ import annotations

import random

import pytest
import torch
from oracles import lengths_to_mask, random_lengths

import hybrid
from hybrid import CRF, ChainConstraints, allowed_transitions
from hybrid.structured import kbest, marginals, viterbi
from hybrid.tagging.schemes import allowed_transitions as allowed_transitions_direct


def parse(label):
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``."""
    if label == "O":
        return "O", None
    prefix, typ = label.split("-", 1)
    return prefix, typ


# --- the rules, written out from the scheme definitions -----------------------------------------


def bio_rules(prev, cur):
    """prev is None at the start. I-X only after B-X or I-X; everything else is free."""
    p, t = cur
    if p == "I":
        return prev is not None and prev[0] in ("B", "I") and prev[1] == t
    return True


def bio_end(cur):
    return True


def bioes_rules(prev, cur):
    """After start / O / E-* / S-*: O, B-*, S-*.  After B-X / I-X: only I-X or E-X."""
    p, t = cur
    if prev is None or prev[0] in ("O", "E", "S"):
        return p in ("O", "B", "S")
    # prev is B-X or I-X
    return p in ("I", "E") and t == prev[1]


def bioes_end(cur):
    return cur[0] in ("O", "E", "S")


def iob1_rules(prev, cur):
    """O and I-X may follow anything (and start); B-X only after B-X or I-X of the same type."""
    p, t = cur
    if p in ("O", "I"):
        return True
    return prev is not None and prev[0] in ("B", "I") and prev[1] == t


def iob1_end(cur):
    return True


RULES = {
    "BIO": (bio_rules, bio_end),
    "BIOES": (bioes_rules, bioes_end),
    "IOB1": (iob1_rules, iob1_end),
}
ALIASES = {"IOB2": "BIO", "IOBES": "BIOES"}


def expected_masks(scheme, labels):
    rule, end_rule = RULES[ALIASES.get(scheme, scheme)]
    parsed = [parse(lab) for lab in labels]
    K = len(labels)
    trans = torch.tensor([[rule(parsed[i], parsed[j]) for j in range(K)] for i in range(K)])
    start = torch.tensor([rule(None, parsed[j]) for j in range(K)])
    end = torch.tensor([end_rule(parsed[j]) for j in range(K)])
    return trans, start, end


def full(mask, K):
    return torch.ones(K, dtype=torch.bool) if mask is None else mask


LABELS = {
    "BIO": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC"],
    "IOB2": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "IOB1": ["O", "I-PER", "B-PER", "I-LOC", "B-LOC"],
    "BIOES": ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"],
    "IOBES": ["O", "B-ORG", "I-ORG", "E-ORG", "S-ORG"],
}


@pytest.mark.parametrize("scheme", list(LABELS))
@pytest.mark.parametrize("shuffle", [False, True], ids=["ordered", "shuffled"])
def test_masks_follow_the_rule_table(scheme, shuffle):
    labels = list(LABELS[scheme])
    if shuffle:
        random.Random(len(labels)).shuffle(labels)
    c = allowed_transitions(scheme, labels)
    assert isinstance(c, ChainConstraints)
    K = len(labels)
    t, s, e = expected_masks(scheme, labels)
    assert c.transitions.dtype == torch.bool and c.transitions.shape == (K, K)
    assert torch.equal(c.transitions, t), (labels, c.transitions.int(), t.int())
    assert torch.equal(full(c.start, K), s), (labels, c.start, s)
    assert torch.equal(full(c.end, K), e), (labels, c.end, e)


def test_bio_literal_table():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    c = allowed_transitions("BIO", labels)
    T, F = True, False
    expected = torch.tensor(
        [
            # to:  O  B-PER I-PER B-LOC I-LOC
            [T, T, F, T, F],  # from O
            [T, T, T, T, F],  # from B-PER
            [T, T, T, T, F],  # from I-PER
            [T, T, F, T, T],  # from B-LOC
            [T, T, F, T, T],  # from I-LOC
        ]
    )
    assert torch.equal(c.transitions, expected)
    assert torch.equal(full(c.start, 5), torch.tensor([T, T, F, T, F]))
    assert torch.equal(full(c.end, 5), torch.ones(5, dtype=torch.bool))


def test_bioes_literal_table():
    labels = ["O", "B-X", "I-X", "E-X", "S-X"]
    c = allowed_transitions("BIOES", labels)
    T, F = True, False
    expected = torch.tensor(
        [
            # to:  O  B  I  E  S
            [T, T, F, F, T],  # from O
            [F, F, T, T, F],  # from B-X
            [F, F, T, T, F],  # from I-X
            [T, T, F, F, T],  # from E-X
            [T, T, F, F, T],  # from S-X
        ]
    )
    assert torch.equal(c.transitions, expected)
    assert torch.equal(full(c.start, 5), torch.tensor([T, T, F, F, T]))
    assert torch.equal(full(c.end, 5), torch.tensor([T, F, F, T, T]))


def test_iob1_literal_table():
    labels = ["O", "I-X", "B-X", "I-Y", "B-Y"]
    c = allowed_transitions("IOB1", labels)
    T, F = True, False
    expected = torch.tensor(
        [
            # to:  O  I-X B-X I-Y B-Y
            [T, T, F, T, F],  # from O
            [T, T, T, T, F],  # from I-X
            [T, T, T, T, F],  # from B-X
            [T, T, F, T, T],  # from I-Y
            [T, T, F, T, T],  # from B-Y
        ]
    )
    assert torch.equal(c.transitions, expected)
    assert torch.equal(full(c.start, 5), torch.tensor([T, T, F, T, F]))
    assert torch.equal(full(c.end, 5), torch.ones(5, dtype=torch.bool))


@pytest.mark.parametrize("alias,canonical", [("IOB2", "BIO"), ("IOBES", "BIOES")])
def test_aliases(alias, canonical):
    labels = LABELS["BIOES"] if canonical == "BIOES" else LABELS["BIO"]
    a = allowed_transitions(alias, labels)
    b = allowed_transitions(canonical, labels)
    K = len(labels)
    assert torch.equal(a.transitions, b.transitions)
    assert torch.equal(full(a.start, K), full(b.start, K))
    assert torch.equal(full(a.end, K), full(b.end, K))


def test_exported_from_the_top_level():
    assert hybrid.allowed_transitions is allowed_transitions_direct
    assert hybrid.ChainConstraints is ChainConstraints


# --- decoding under scheme constraints --------------------------------------------------------


def check_bio(seq, labels):
    prev = None
    for tag in seq:
        p, t = parse(labels[tag])
        if p == "I":
            assert prev is not None and prev[0] in ("B", "I") and prev[1] == t, [
                labels[i] for i in seq
            ]
        prev = (p, t)


def check_bioes(seq, labels):
    prev = None
    for tag in seq:
        cur = parse(labels[tag])
        assert bioes_rules(prev, cur), [labels[i] for i in seq]
        prev = cur
    assert bioes_end(prev), [labels[i] for i in seq]


@pytest.mark.parametrize("scheme,checker", [("BIO", check_bio), ("BIOES", check_bioes)])
def test_decoding_respects_scheme_on_random_emissions(scheme, checker):
    labels = LABELS[scheme]
    K = len(labels)
    c = allowed_transitions(scheme, labels)
    g = torch.Generator().manual_seed(3)
    B, T = 32, 15
    lengths = random_lengths(B, T, g)
    # emissions pushing hard towards I-* tags: an unconstrained decoder would break the scheme
    em = torch.randn(B, T, K, generator=g) * 3
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            em[..., j] += 4.0
    tr = torch.randn(K, K, generator=g)
    unconstrained, _ = viterbi(em, tr, lengths=lengths)
    violations = 0
    for b in range(B):
        try:
            checker(unconstrained[b, : int(lengths[b])].tolist(), labels)
        except AssertionError:
            violations += 1
    assert violations > 0, "test emissions are too easy: nothing to constrain"

    paths, _ = viterbi(em, tr, lengths=lengths, constraints=c)
    kp, ks = kbest(em, tr, lengths=lengths, constraints=c, k=4)
    for b in range(B):
        L = int(lengths[b])
        checker(paths[b, :L].tolist(), labels)
        for j in range(4):
            if torch.isfinite(ks[b, j]):
                checker(kp[b, j, :L].tolist(), labels)

    crf = CRF(K, constraints=c)
    with torch.no_grad():
        crf.transitions.copy_(tr)
        cp, _ = crf.decode(em, lengths)
    for b in range(B):
        checker(cp[b, : int(lengths[b])].tolist(), labels)


def test_bio_marginals_never_put_mass_on_invalid_i_tags():
    labels = LABELS["BIO"]
    K = len(labels)
    c = allowed_transitions("BIO", labels)
    g = torch.Generator().manual_seed(4)
    B, T = 8, 10
    lengths = random_lengths(B, T, g)
    em = torch.randn(B, T, K, generator=g, dtype=torch.float64)
    tr = torch.randn(K, K, generator=g, dtype=torch.float64)
    unary, pair = marginals(em, tr, lengths=lengths, constraints=c, pairwise=True)
    o = labels.index("O")
    i_tags = [j for j, lab in enumerate(labels) if lab.startswith("I-")]
    assert (unary[:, 0, i_tags] == 0).all()  # never I-X at the start
    assert (pair[:, :, o, i_tags] == 0).all()  # never I-X after O
    mask = lengths_to_mask(lengths, T)
    torch.testing.assert_close(
        unary.sum(-1)[mask], torch.ones(int(mask.sum()), dtype=torch.float64)
    )


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["BILOU", "bogus", "", "IOB3"])
def test_unknown_scheme(scheme):
    with pytest.raises(ValueError, match="scheme"):
        allowed_transitions(scheme, ["O", "B-PER", "I-PER"])


@pytest.mark.parametrize(
    "scheme,bad",
    [
        ("BIO", "PER"),
        ("BIO", "X-PER"),
        ("BIO", "E-PER"),
        ("IOB1", "S-PER"),
        ("BIOES", "Q-PER"),
        ("BIOES", "PER"),
    ],
)
def test_bad_label(scheme, bad):
    with pytest.raises(ValueError, match="label"):
        allowed_transitions(scheme, ["O", "B-PER", "I-PER", bad])
