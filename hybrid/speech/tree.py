"""Phonetic decision trees: the states of context-dependent phones tied by questions about
their neighbours (Young, Odell & Woodland 1994; Kaldi's tree building).

A context-dependent phone is a phone with the phone before it (``left``) and after it
(``right``): inside its word (word-internal contexts), where the neighbour at a word's edge
is `WORD_EDGE`; or across words (cross-word contexts), where the neighbour at a word's edge
is the last phone of the word before or the first of the word after, and `WORD_EDGE` only
next to a pause or the utterance's edge. Each state of each phone has a tree (a *root* per
``(phone, state)``) whose internal nodes ask whether the left or the right neighbour is in a
phonetic class (vowels, nasals, ``P``, ...: `phonetic_questions`) and whose leaves are the
tied states, one pdf each. Any context is answered, so a triphone never seen in training (in
a word never heard) still has its pdfs.

`context_statistics` gathers, from frame alignments of context-independent phones, the
frames' count, sum and sum of squares per ``(phone, state, left, right)``; `grow_tree` splits
greedily, always the leaf whose best question gains the most log-likelihood under one
diagonal Gaussian per cluster (and no more than the split above it, so that gains fall down
the tree), until ``max_leaves`` or until no split gains ``min_gain`` with ``min_count``
frames on each side. `PhoneticTree.monophones` is the tree without splits: one
pdf per phone state, the context-independent HMMs.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "ARPABET_CLASSES",
    "WORD_EDGE",
    "ContextStatistics",
    "context_statistics",
    "PhoneticTree",
    "Question",
    "grow_tree",
    "phonetic_questions",
    "word_contexts",
]

#: The neighbour of a phone at the edge of its word (word-internal contexts), or, where
#: contexts cross words, next to a pause or the edge of the utterance: no phone.
WORD_EDGE = "#"

_VOWELS = "AA AE AH AO AW AX AXR AY EH ER EY IH IX IY OW OY UH UW UX"

#: Linguistic classes of the ARPAbet phones (CMUdict's 39, TIMIT's folded 39 and the usual
#: extra symbols), by manner, place and voicing; matched without regard to case.
ARPABET_CLASSES: dict[str, tuple[str, ...]] = {
    name: tuple(phones.split())
    for name, phones in {
        "vowel": _VOWELS,
        "front-vowel": "AE EH EY IH IX IY",
        "central-vowel": "AH AX AXR ER",
        "back-vowel": "AA AO OW UH UW UX",
        "high-vowel": "IH IX IY UH UW UX",
        "low-vowel": "AA AE AO AW AY",
        "diphthong": "AW AY EY OW OY",
        "rhotic": "AXR ER R",
        "rounded": "AO OW OY UH UW UX W",
        "consonant": "B CH D DH DX F G HH JH K L M N NG P R S SH T TH V W Y Z ZH",
        "stop": "B D DX G K P T",
        "voiced-stop": "B D DX G",
        "unvoiced-stop": "K P T",
        "fricative": "DH F HH S SH TH V Z ZH",
        "voiced-fricative": "DH V Z ZH",
        "unvoiced-fricative": "F HH S SH TH",
        "affricate": "CH JH",
        "sibilant": "CH JH S SH Z ZH",
        "nasal": "EM EN ENG M N NG",
        "liquid": "EL L R",
        "glide": "W Y",
        "labial": "B F M P V W",
        "dental": "DH TH",
        "alveolar": "D DX L N R S T Z",
        "post-alveolar": "CH JH SH Y ZH",
        "velar": "G K NG",
        "glottal": "HH",
        "voiced": f"{_VOWELS} B D DH DX G JH L M N NG R V W Y Z ZH",
        "unvoiced": "CH F HH K P S SH T TH",
    }.items()
}


@dataclass(frozen=True)
class Question:
    """Is a neighbour in ``phones``?

    Attributes:
        name: The class's name (``"nasal"``, ``"is-P"``, ``"word-edge"``).
        phones: The phone symbols (and possibly `WORD_EDGE`) that answer yes.
    """

    name: str
    phones: frozenset[str]


def phonetic_questions(
    phones: Sequence[str], classes: Mapping[str, Sequence[str]] | None = None
) -> list[Question]:
    """The questions a tree over ``phones`` may ask of a neighbour: each class of
    ``classes`` (default `ARPABET_CLASSES`, matched without regard to case) restricted to
    ``phones`` when that leaves at least one phone, then each phone alone (``is-P``), then
    `WORD_EDGE` (``word-edge``); a class that restricts to the same phones as an earlier one
    is left out."""
    classes = ARPABET_CLASSES if classes is None else classes
    by_case = {phone.upper(): phone for phone in phones}
    found: dict[frozenset[str], str] = {}
    for name, members in classes.items():
        kept = frozenset(by_case[m.upper()] for m in members if m.upper() in by_case)
        if kept:
            found.setdefault(kept, name)
    for phone in phones:
        found.setdefault(frozenset([phone]), f"is-{phone}")
    found.setdefault(frozenset([WORD_EDGE]), "word-edge")
    return [Question(name, members) for members, name in found.items()]


@dataclass
class ContextStatistics:
    """The frames of each seen context-dependent phone state.

    Attributes:
        keys: ``(phone, state, left, right)`` per entry (phone symbols, `WORD_EDGE` at a
            word's edge).
        counts: ``(K,)`` float64 frame counts.
        sums: ``(K, D)`` float64 sums of the frames.
        squares: ``(K, D)`` float64 sums of their squares.
    """

    keys: list[tuple[str, int, str, str]]
    counts: Tensor
    sums: Tensor
    squares: Tensor


def word_contexts(
    phones: Sequence[str], left: str = WORD_EDGE, right: str = WORD_EDGE
) -> list[tuple[str, str]]:
    """The ``(left, right)`` neighbours of each phone of one word: the phones beside it, and
    at the word's edges ``left`` and ``right`` (`WORD_EDGE`, or across words the last phone
    of the word before and the first of the word after)."""
    padded = [left, *phones, right]
    return [(padded[i], padded[i + 2]) for i in range(len(phones))]


def context_statistics(
    features: Sequence[Tensor],
    phones: Sequence[Sequence[tuple[str, str, str, int, int]]],
    states: Sequence[Tensor],
) -> ContextStatistics:
    """Count, sum and sum of squares of the frames of each context-dependent phone state.

    Args:
        features: Per utterance ``(T_i, D)``.
        phones: Per utterance the phones it says, silence left out, each as
            ``(phone, left, right, first frame, end frame)`` (`word_contexts`).
        states: Per utterance ``(T_i,)`` the state of its phone each frame is in.
    """
    keys: dict[tuple[str, int, str, str], int] = {}
    rows, frames = [], []
    for x, said, state in zip(features, phones, states, strict=True):
        for phone, left, right, first, end in said:
            inside = state[first:end]
            present = inside.unique()  # sorted: the states in the order the phone passes them
            ids = [keys.setdefault((phone, s, left, right), len(keys)) for s in present.tolist()]
            rows.append(torch.tensor(ids)[torch.searchsorted(present, inside)])
            frames.append(x[first:end])
    if not rows:
        raise ValueError("phones: no utterance says a phone; expected aligned phones")
    x = torch.cat(frames).double()
    row = torch.cat(rows)
    counts = torch.bincount(row, minlength=len(keys)).double()
    sums = torch.zeros(len(keys), x.shape[1], dtype=torch.float64).index_add_(0, row, x)
    squares = torch.zeros_like(sums).index_add_(0, row, x * x)
    return ContextStatistics(list(keys), counts, sums, squares)


def _log_likelihood(counts: Tensor, sums: Tensor, squares: Tensor, floor: float) -> Tensor:
    """The log-likelihood of clusters of frames under one diagonal Gaussian each, fitted by
    maximum likelihood (variances floored): ``counts (...,)``, ``sums``/``squares``
    ``(..., D)``; an empty cluster has 0."""
    n = counts.clamp_min(1e-10)[..., None]
    variance = (squares / n - (sums / n) ** 2).clamp_min(floor)
    per_frame = torch.log(2 * math.pi * variance).sum(-1) + sums.shape[-1]
    return torch.where(counts > 0, -0.5 * counts * per_frame, torch.zeros_like(counts))


class PhoneticTree:
    """A decision tree per ``(phone, state)`` whose leaves are the tied states' pdfs.

    A node is plain data: a leaf ``{"pdf": int}``, or a split ``{"side": "left" | "right",
    "question": name, "phones": [...], "gain": float, "count": float, "yes": node,
    "no": node}`` (``gain``: the log-likelihood the split added; ``count``: the frames under
    it). Leaves are numbered root by root, phone-major in the order of ``phones``, and depth
    first (``yes`` before ``no``) within a root, so that the tree without splits numbers the
    pdf of state ``s`` of phone ``p`` ``p * states + s``.

    Args:
        phones: The phones, in root order.
        states: States per phone HMM.
        roots: Per phone and state (``roots[p * states + s]``) its tree; its leaves' pdf
            numbers are assigned here.
    """

    def __init__(self, phones: Sequence[str], states: int, roots: Sequence[dict]):
        if len(roots) != len(phones) * states:
            raise ValueError(
                f"roots must hold {len(phones) * states} trees ({len(phones)} phones x "
                f"{states} states), got {len(roots)}"
            )
        self.phones, self.states = tuple(phones), states
        counter = itertools.count()
        self.roots = [_numbered(root, counter) for root in roots]
        self._phone_index = {phone: i for i, phone in enumerate(self.phones)}
        self.num_leaves = sum(1 for root in self.roots for _ in _leaves(root))

    @classmethod
    def monophones(cls, phones: Sequence[str], states: int) -> PhoneticTree:
        """The tree without splits: one pdf per state of each phone."""
        return cls(phones, states, [{} for _ in range(len(phones) * states)])

    @property
    def num_splits(self) -> int:
        """Number of questions asked (leaves minus roots)."""
        return self.num_leaves - len(self.roots)

    def pdf(self, phone: str, state: int, left: str = WORD_EDGE, right: str = WORD_EDGE) -> int:
        """The pdf of ``state`` of ``phone`` between ``left`` and ``right``."""
        node = self.roots[self._phone_index[phone] * self.states + state]
        while "pdf" not in node:
            asked = left if node["side"] == "left" else right
            node = node["yes"] if asked in node["phones"] else node["no"]
        return node["pdf"]

    def leaf_roots(self) -> Tensor:
        """``(num_leaves,)`` int64: the root (``phone * states + state``) of each pdf."""
        roots = [r for r, root in enumerate(self.roots) for _ in _leaves(root)]
        return torch.tensor(roots, dtype=torch.long)

    def splits(self) -> Iterator[tuple[dict, dict | None]]:
        """Every split node with the split above it (``None`` at a root)."""
        stack = [(root, None) for root in self.roots if "pdf" not in root]
        while stack:
            node, parent = stack.pop()
            yield node, parent
            stack += [(node[b], node) for b in ("yes", "no") if "pdf" not in node[b]]

    def to_dict(self) -> dict:
        """The tree as plain data (`from_dict` reads it back)."""
        return {"phones": list(self.phones), "states": self.states, "roots": self.roots}

    @classmethod
    def from_dict(cls, data: dict) -> PhoneticTree:
        """The tree that `to_dict` wrote."""
        return cls(data["phones"], data["states"], data["roots"])


def _numbered(node: dict, counter: Iterator[int]) -> dict:
    """A copy of ``node`` whose leaves take the next numbers of ``counter``, depth first."""
    if "side" not in node:
        return {"pdf": next(counter)}
    yes, no = _numbered(node["yes"], counter), _numbered(node["no"], counter)
    return {**node, "phones": sorted(node["phones"]), "yes": yes, "no": no}


def _leaves(node: dict) -> Iterator[dict]:
    if "pdf" in node:
        yield node
    else:
        yield from _leaves(node["yes"])
        yield from _leaves(node["no"])


def grow_tree(
    statistics: ContextStatistics,
    phones: Sequence[str],
    states: int,
    questions: Sequence[Question],
    max_leaves: int,
    min_count: float = 50.0,
    min_gain: float = 0.0,
    variance_floor: float = 1e-3,
) -> PhoneticTree:
    """Tie the context-dependent phone states of ``statistics`` by growing a tree per phone
    state, best split first.

    Every leaf's best split is the question about its left or right neighbour that gains the
    most log-likelihood (each side's frames under one diagonal Gaussian, variances floored
    at ``variance_floor``) with at least ``min_count`` frames on each side, and no more than
    the split that made the leaf: gains are non-increasing down every path. The leaf whose
    best split gains the most is split, until the tree has ``max_leaves`` leaves or no split
    gains more than ``min_gain``.

    Greedy splitting alone does not keep gains falling: a subset can hold a contrast its
    parent's frames did not show, and its best question then gains more than the parent's.
    With the ceiling, the queue makes its splits in non-increasing order of gain, so the
    tree of ``max_leaves`` leaves is the tree grown down to the gain of its last split: the
    limit on leaves and the threshold on gains cut the same sequence of splits.

    Args:
        statistics: Frames per seen ``(phone, state, left, right)`` (`context_statistics`).
        phones: The phones (the roots, in order); ``statistics`` must name only these.
        states: States per phone.
        questions: What a node may ask of a neighbour (`phonetic_questions`).
        max_leaves: The most tied states (at least ``len(phones) * states``).
        min_count: Fewest frames on each side of a split.
        min_gain: Least log-likelihood gain of a split.
        variance_floor: Floor of the clusters' variances.

    Raises:
        ValueError: ``max_leaves`` below the number of roots, no questions, or statistics of
            a phone or state outside ``phones``/``states``.
    """
    if max_leaves < len(phones) * states:
        raise ValueError(
            f"max_leaves must be at least the {len(phones) * states} phone states, got {max_leaves}"
        )
    if not questions:
        raise ValueError("questions must hold at least one question")
    index = {phone: i for i, phone in enumerate(phones)}
    by_root: list[list[int]] = [[] for _ in range(len(phones) * states)]
    for k, (phone, state, _, _) in enumerate(statistics.keys):
        if phone not in index or not 0 <= state < states:
            raise ValueError(
                f"statistics name the state {state} of {phone!r}; expected one of "
                f"{states} states of the phones {' '.join(phones)}"
            )
        by_root[index[phone] * states + state].append(k)
    stats = (statistics.counts, statistics.sums, statistics.squares)
    contexts, *context_ids = _context_ids(statistics)
    members = torch.tensor([[c in q.phones for c in contexts] for q in questions])

    def best_split(rows: list[int], ceiling: float) -> tuple[float, dict] | None:
        """The best question for the cluster of entries ``rows`` gaining at most ``ceiling``:
        ``(gain, split)``, the split holding the node's fields and the entries of each
        branch; ``None`` if no question may split it."""
        if len(rows) < 2:
            return None
        rows_t = torch.tensor(rows)
        counts, sums, squares = (x[rows_t] for x in stats)
        whole = _log_likelihood(counts.sum(), sums.sum(0), squares.sum(0), variance_floor)
        best = None
        for side in (0, 1):
            yes = members[:, context_ids[side][rows_t]].double()  # (Q, R)
            n_yes, s_yes, q_yes = yes @ counts, yes @ sums, yes @ squares
            n_no, s_no, q_no = counts.sum() - n_yes, sums.sum(0) - s_yes, squares.sum(0) - q_yes
            gain = (
                _log_likelihood(n_yes, s_yes, q_yes, variance_floor)
                + _log_likelihood(n_no, s_no, q_no, variance_floor)
                - whole
            )
            gain[(n_yes < min_count) | (n_no < min_count) | (gain > ceiling)] = -math.inf
            q = int(gain.argmax())
            if gain[q] > min_gain and (best is None or gain[q] > best[0]):
                best = (float(gain[q]), side, q, yes[q].bool().tolist(), float(counts.sum()))
        if best is None:
            return None
        gain, side, q, answers, count = best
        node = {
            "side": ("left", "right")[side],
            "question": questions[q].name,
            "phones": sorted(questions[q].phones),
            "gain": gain,
            "count": count,
        }
        yes_rows = [r for r, a in zip(rows, answers, strict=True) if a]
        no_rows = [r for r, a in zip(rows, answers, strict=True) if not a]
        return gain, {"node": node, "yes": yes_rows, "no": no_rows}

    heap: list[tuple[float, int, dict, dict]] = []  # (-gain, arrival, leaf node, split)
    arrival = itertools.count()

    def consider(leaf: dict, rows: list[int], ceiling: float) -> None:
        found = best_split(rows, ceiling)
        if found:
            heapq.heappush(heap, (-found[0], next(arrival), leaf, found[1]))

    roots: list[dict] = [{} for _ in by_root]
    for root, rows in zip(roots, by_root, strict=True):
        consider(root, rows, math.inf)
    leaves = len(roots)
    while heap and leaves < max_leaves:
        _, _, leaf, split = heapq.heappop(heap)
        leaf.update(split["node"], yes={}, no={})
        leaves += 1
        consider(leaf["yes"], split["yes"], leaf["gain"])
        consider(leaf["no"], split["no"], leaf["gain"])
    return PhoneticTree(phones, states, roots)


def _context_ids(statistics: ContextStatistics) -> tuple[list[str], Tensor, Tensor]:
    """Every neighbour symbol the statistics name, in a fixed order, and per entry the index
    there of its left and of its right neighbour."""
    contexts = sorted({c for _, _, left, right in statistics.keys for c in (left, right)})
    index = {c: i for i, c in enumerate(contexts)}
    left = torch.tensor([index[k[2]] for k in statistics.keys], dtype=torch.long)
    right = torch.tensor([index[k[3]] for k in statistics.keys], dtype=torch.long)
    return contexts, left, right
