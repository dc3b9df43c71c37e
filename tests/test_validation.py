"""Bad input gets a ValueError whose message names the offending argument.

Each case starts from a valid problem (B=3, T=4, K=3, lengths [4, 2, 1]), breaks exactly one
thing, and is run against every public entry point that takes that argument.
"""

from __future__ import annotations

import pytest
import torch

from hybrid import CRF, ChainConstraints, StructuredSVM, allowed_transitions
from hybrid.structured import kbest, log_partition, marginals, sequence_score, viterbi

B, T, K = 3, 4, 3
NAN, INF = float("nan"), float("inf")


def base():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([4, 2, 1])
    tags = torch.randint(0, K, (B, T), generator=g)
    tags[1, 2:] = -1
    tags[2, 1:] = -1
    return dict(
        em=torch.randn(B, T, K, generator=g),
        tr=torch.randn(K, K, generator=g),
        start=torch.randn(K, generator=g),
        end=torch.randn(K, generator=g),
        lengths=lengths,
        tags=tags,
        constraints=None,
        k=2,
        reduction="mean",
        cost="hamming",
        num_tags=K,
    )


def _kw(d):
    return dict(lengths=d["lengths"], constraints=d["constraints"])


def _crf(d):
    return CRF(d["num_tags"], constraints=d["constraints"])


def _ssvm(d):
    return StructuredSVM(d["num_tags"], constraints=d["constraints"])


TARGETS = {
    "log_partition": lambda d: log_partition(d["em"], d["tr"], d["start"], d["end"], **_kw(d)),
    "marginals": lambda d: marginals(d["em"], d["tr"], d["start"], d["end"], **_kw(d)),
    "marginals_pairwise": lambda d: marginals(
        d["em"], d["tr"], d["start"], d["end"], **_kw(d), pairwise=True
    ),
    "viterbi": lambda d: viterbi(d["em"], d["tr"], d["start"], d["end"], **_kw(d)),
    "kbest": lambda d: kbest(d["em"], d["tr"], d["start"], d["end"], **_kw(d), k=d["k"]),
    "sequence_score": lambda d: sequence_score(
        d["em"], d["tags"], d["tr"], d["start"], d["end"], lengths=d["lengths"]
    ),
    "crf.nll": lambda d: _crf(d).nll(d["em"], d["tags"], d["lengths"], reduction=d["reduction"]),
    "crf.forward": lambda d: _crf(d)(d["em"], d["tags"], d["lengths"]),
    "crf.decode": lambda d: _crf(d).decode(d["em"], d["lengths"]),
    "crf.decode_k": lambda d: _crf(d).decode(d["em"], d["lengths"], k=d["k"]),
    "crf.marginals": lambda d: _crf(d).marginals(d["em"], d["lengths"]),
    "crf.log_partition": lambda d: _crf(d).log_partition(d["em"], d["lengths"]),
    "crf.score": lambda d: _crf(d).score(d["em"], d["tags"], d["lengths"]),
    "ssvm.loss": lambda d: _ssvm(d).loss(
        d["em"], d["tags"], d["lengths"], cost=d["cost"], reduction=d["reduction"]
    ),
    "ssvm.perceptron_loss": lambda d: _ssvm(d).perceptron_loss(
        d["em"], d["tags"], d["lengths"], reduction=d["reduction"]
    ),
    "ssvm.decode": lambda d: _ssvm(d).decode(d["em"], d["lengths"]),
}

DP = ["log_partition", "marginals", "marginals_pairwise", "viterbi", "kbest"]
PURE = DP + ["sequence_score"]
LAYER = [t for t in TARGETS if "." in t]
LAYER_DP = [
    "crf.nll",
    "crf.decode",
    "crf.decode_k",
    "crf.marginals",
    "crf.log_partition",
    "ssvm.loss",
    "ssvm.decode",
]
WITH_TAGS = [
    "sequence_score",
    "crf.nll",
    "crf.forward",
    "crf.score",
    "ssvm.loss",
    "ssvm.perceptron_loss",
]
ALL = list(TARGETS)
CONSTRAINED = DP + LAYER_DP
WITH_K = ["kbest", "crf.decode_k"]
WITH_REDUCTION = ["crf.nll", "ssvm.loss", "ssvm.perceptron_loss"]


def setter(**changes):
    def apply(d):
        for key, value in changes.items():
            d[key] = value(d) if callable(value) else value

    return apply


def _with(name, index, value):
    def f(d):
        x = d[name].clone()
        x[index] = value
        return x

    return f


def _mask(rows):
    return torch.tensor(rows, dtype=torch.bool)


ALL_FALSE_T = torch.zeros(K, K, dtype=torch.bool)
ALL_TRUE_T = torch.ones(K, K, dtype=torch.bool)
ALL_TRUE_V = torch.ones(K, dtype=torch.bool)

# (id, mutation, regex the message must match, targets)
CASES = [
    # emissions
    ("emissions-rank2", setter(em=lambda d: d["em"][0]), "emissions", ALL),
    ("emissions-rank4", setter(em=lambda d: d["em"][None]), "emissions", ALL),
    ("emissions-int", setter(em=lambda d: (d["em"] * 10).long()), "emissions", ALL),
    ("emissions-nan", setter(em=_with("em", (0, 1, 2), NAN)), "emissions", ALL),
    ("emissions-nan-short-item", setter(em=_with("em", (2, 0, 0), NAN)), "emissions", ALL),
    ("emissions-posinf", setter(em=_with("em", (1, 1, 0), INF)), "emissions", ALL),
    (
        "empty-batch",
        setter(em=torch.zeros(0, T, K), tags=torch.zeros(0, T, dtype=torch.long), lengths=None),
        "emissions",
        ALL,
    ),
    (
        "empty-time",
        setter(em=torch.zeros(B, 0, K), tags=torch.zeros(B, 0, dtype=torch.long), lengths=None),
        "emissions",
        ALL,
    ),
    ("layer-K-mismatch", setter(num_tags=K + 1), "emissions", LAYER),
    # transitions / start / end
    ("transitions-K-mismatch", setter(tr=torch.zeros(K + 1, K + 1)), "transitions", PURE),
    ("transitions-not-square", setter(tr=torch.zeros(K, K + 1)), "transitions", PURE),
    ("transitions-rank1", setter(tr=torch.zeros(K)), "transitions", PURE),
    ("transitions-nan", setter(tr=_with("tr", (0, 1), NAN)), "transitions", PURE),
    ("transitions-posinf", setter(tr=_with("tr", (2, 2), INF)), "transitions", PURE),
    ("start-K-mismatch", setter(start=torch.zeros(K + 1)), "start", PURE),
    ("end-K-mismatch", setter(end=torch.zeros(K - 1)), "end", PURE),
    ("start-nan", setter(start=_with("start", 0, NAN)), "start", PURE),
    ("end-nan", setter(end=_with("end", 1, NAN)), "end", PURE),
    # tags
    ("tags-too-large", setter(tags=_with("tags", (0, 3), K)), "tags", WITH_TAGS),
    ("tags-negative-inside", setter(tags=_with("tags", (1, 1), -1)), "tags", WITH_TAGS),
    ("tags-very-negative", setter(tags=_with("tags", (2, 0), -7)), "tags", WITH_TAGS),
    ("tags-short", setter(tags=lambda d: d["tags"][:, :-1]), "tags", WITH_TAGS),
    ("tags-batch", setter(tags=lambda d: d["tags"][:-1]), "tags", WITH_TAGS),
    ("tags-rank3", setter(tags=lambda d: d["tags"][..., None]), "tags", WITH_TAGS),
    ("tags-float", setter(tags=lambda d: d["tags"].clamp(min=0).float()), "tags", WITH_TAGS),
    # lengths
    ("lengths-zero", setter(lengths=torch.tensor([4, 0, 1])), "lengths", ALL),
    ("lengths-negative", setter(lengths=torch.tensor([4, -1, 1])), "lengths", ALL),
    ("lengths-too-long", setter(lengths=torch.tensor([5, 2, 1])), "lengths", ALL),
    ("lengths-too-many", setter(lengths=torch.tensor([4, 2, 1, 1])), "lengths", ALL),
    ("lengths-too-few", setter(lengths=torch.tensor([4, 2])), "lengths", ALL),
    ("lengths-2d", setter(lengths=torch.tensor([[4], [2], [1]])), "lengths", ALL),
    ("lengths-float", setter(lengths=torch.tensor([4.0, 2.0, 1.0])), "lengths", ALL),
    (
        "mask-hole",
        setter(lengths=_mask([[1, 1, 1, 1], [1, 0, 1, 0], [1, 0, 0, 0]])),
        "lengths|mask",
        ALL,
    ),
    (
        "mask-left-padded",
        setter(lengths=_mask([[1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]])),
        "lengths|mask",
        ALL,
    ),
    (
        "mask-empty-row",
        setter(lengths=_mask([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]])),
        "lengths|mask",
        ALL,
    ),
    (
        "mask-wrong-shape",
        setter(lengths=torch.ones(B, T + 1, dtype=torch.bool)),
        "lengths|mask",
        ALL,
    ),
    # constraints
    ("constraints-no-transitions", setter(constraints=ALL_FALSE_T), "constraints", CONSTRAINED),
    (
        "constraints-no-transitions-full",
        setter(constraints=ChainConstraints(ALL_FALSE_T, ALL_TRUE_V, ALL_TRUE_V)),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-no-start",
        setter(constraints=ChainConstraints(ALL_TRUE_T, torch.zeros(K, dtype=torch.bool))),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-no-end",
        setter(constraints=ChainConstraints(ALL_TRUE_T, None, torch.zeros(K, dtype=torch.bool))),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-dead-end",
        setter(
            constraints=ChainConstraints(
                torch.tensor([[False, True, False], [False, False, True], [False, False, False]]),
                torch.tensor([True, False, False]),
                None,
            )
        ),
        "constraints",
        CONSTRAINED,
    ),  # 0->1->2 then stuck
    (
        "constraints-bare-shape",
        setter(constraints=torch.ones(K + 1, K + 1, dtype=torch.bool)),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-transitions-shape",
        setter(constraints=ChainConstraints(torch.ones(K, K + 1, dtype=torch.bool))),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-start-shape",
        setter(constraints=ChainConstraints(ALL_TRUE_T, torch.ones(K + 1, dtype=torch.bool))),
        "constraints",
        CONSTRAINED,
    ),
    (
        "constraints-end-shape",
        setter(constraints=ChainConstraints(ALL_TRUE_T, None, torch.ones(K - 1, dtype=torch.bool))),
        "constraints",
        CONSTRAINED,
    ),
    # k
    ("k-zero", setter(k=0), r"\bk\b", WITH_K),
    ("k-negative", setter(k=-3), r"\bk\b", WITH_K),
    # reduction
    ("reduction-unknown", setter(reduction="average"), "reduction", WITH_REDUCTION),
    ("reduction-none-object", setter(reduction=None), "reduction", WITH_REDUCTION),
    # ssvm cost
    ("cost-unknown", setter(cost="levenshtein"), "cost", ["ssvm.loss"]),
    ("cost-shape", setter(cost=torch.ones(K + 1, K + 1).fill_diagonal_(0)), "cost", ["ssvm.loss"]),
    ("cost-negative", setter(cost=-torch.ones(K, K).fill_diagonal_(0)), "cost", ["ssvm.loss"]),
    ("cost-diagonal", setter(cost=torch.ones(K, K)), "cost", ["ssvm.loss"]),
]


def _params():
    out = []
    for ident, mutate, pattern, targets in CASES:
        for target in targets:
            out.append(pytest.param(mutate, pattern, target, id=f"{ident}-{target}"))
    return out


@pytest.mark.parametrize("mutate,pattern,target", _params())
def test_bad_input_raises_value_error_naming_the_argument(mutate, pattern, target):
    d = base()
    mutate(d)
    with pytest.raises(ValueError, match=pattern):
        TARGETS[target](d)


@pytest.mark.parametrize("target", ALL)
def test_the_base_problem_is_valid(target):
    # guards the test above: every failure there comes from the single mutation
    TARGETS[target](base())


# --------------------------------------------------------------------------------------------
# specific cases
# --------------------------------------------------------------------------------------------


def test_gold_tags_violating_constraints_in_crf_nll():
    labels = ["O", "B-PER", "I-PER"]
    crf = CRF(3, constraints=allowed_transitions("BIO", labels))
    em = torch.randn(2, 4, 3)
    lengths = torch.tensor([4, 2])
    bad_after_o = torch.tensor([[0, 2, 2, 0], [1, 2, -1, -1]])  # I-PER after O
    with pytest.raises(ValueError, match="tags"):
        crf.nll(em, bad_after_o, lengths)
    bad_start = torch.tensor([[0, 1, 2, 0], [2, 2, -1, -1]])  # I-PER at the start
    with pytest.raises(ValueError, match="tags"):
        crf.nll(em, bad_start, lengths)
    ok = torch.tensor([[0, 1, 2, 0], [1, 2, -1, -1]])
    assert torch.isfinite(crf.nll(em, ok, lengths))


def test_gold_tags_ending_in_forbidden_state():
    c = allowed_transitions("BIOES", ["O", "B-X", "I-X", "E-X", "S-X"])
    crf = CRF(5, constraints=c)
    em = torch.randn(1, 3, 5)
    with pytest.raises(ValueError, match="tags"):
        crf.nll(em, torch.tensor([[0, 1, 2]]))  # ends inside an entity
    assert torch.isfinite(crf.nll(em, torch.tensor([[0, 1, 3]])))


def test_no_valid_path_from_neg_inf_emissions():
    d = base()
    d["em"][0, 2, :] = -INF  # no tag possible at t=2 of item 0
    for target in DP + ["crf.nll", "crf.decode"]:
        with pytest.raises(ValueError, match="emissions|valid path|no path"):
            TARGETS[target](d)


def test_crf_constructor_rejects_bad_constraints():
    with pytest.raises(ValueError, match="constraints"):
        CRF(3, constraints=torch.ones(4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="constraints"):
        StructuredSVM(
            3,
            constraints=ChainConstraints(
                torch.ones(3, 3, dtype=torch.bool), torch.ones(2, dtype=torch.bool)
            ),
        )


# --------------------------------------------------------------------------------------------
# things that must NOT raise
# --------------------------------------------------------------------------------------------


def test_neg_inf_scores_are_allowed():
    d = base()
    d["tr"][0, 1] = -INF
    d["start"][2] = -INF
    d["em"][0, 0, 1] = -INF
    for target in PURE:
        TARGETS[target](d)


def test_garbage_past_lengths_is_ignored():
    d = base()
    clean = {name: TARGETS[name](d) for name in ("log_partition", "marginals", "viterbi")}
    mask = torch.arange(T)[None, :] < d["lengths"][:, None]
    d["em"] = d["em"].masked_fill(~mask[..., None], NAN)
    d["em"][1, 3, 0] = INF
    got = {name: TARGETS[name](d) for name in ("log_partition", "marginals", "viterbi")}
    torch.testing.assert_close(got["log_partition"], clean["log_partition"])
    torch.testing.assert_close(got["marginals"], clean["marginals"])
    assert torch.equal(got["viterbi"][0], clean["viterbi"][0])
    torch.testing.assert_close(got["viterbi"][1], clean["viterbi"][1])


def test_tags_past_lengths_may_be_anything_in_crf():
    d = base()
    crf = CRF(K)
    a = crf.nll(d["em"], d["tags"], d["lengths"], reduction="none")
    t2 = d["tags"].clone()
    t2[1, 2:] = 99
    t2[2, 1:] = -100
    b = crf.nll(d["em"], t2, d["lengths"], reduction="none")
    torch.testing.assert_close(a, b)


def test_k_larger_than_path_count_is_allowed():
    d = base()
    d["k"] = 100
    paths, scores = TARGETS["kbest"](d)
    assert paths.shape == (B, 100, T)
    assert torch.isneginf(scores[2, K:]).all()
