"""Chunk tagging schemes (BIO/IOB2, BIOES/IOBES, IOB1) as transition constraints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads in `allowed_transitions`: the rest reads strings only
    from ..structured import ChainConstraints

SCHEMES = {"BIO": "BIO", "IOB2": "BIO", "BIOES": "BIOES", "IOBES": "BIOES", "IOB1": "IOB1"}


def split_tag(tag: str, prefixes: str) -> tuple[str, str]:
    """Split ``"B-PER"`` into ``("B", "PER")``; ``"O"`` into ``("O", "")``.

    Args:
        tag: A label such as ``"O"``, ``"B-LOC"`` or ``"I-fromloc.city_name"``.
        prefixes: The prefixes the scheme allows besides ``O`` (e.g. ``"BI"``).

    Raises:
        ValueError: if the tag does not belong to the scheme.
    """
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or len(prefix) != 1 or prefix not in prefixes or not kind:
        allowed = ", ".join(f"'{p}-TYPE'" for p in prefixes)
        raise ValueError(f"labels must be 'O' or one of {allowed}; got {tag!r}")
    return prefix, kind


def _can_follow(scheme: str, prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    (p, p_kind), (c, c_kind) = prev, cur
    same = p_kind == c_kind
    if scheme == "BIO":
        return c != "I" or (p in "BI" and same)
    if scheme == "IOB1":
        return c != "B" or (p in "BI" and same)
    # BIOES: inside a chunk (after B/I) only I/E of the same type; outside, only O/B/S.
    if p in "BI":
        return c in "IE" and same
    return c in "OBS"


def _can_start(scheme: str, tag: tuple[str, str]) -> bool:
    if scheme == "BIO":
        return tag[0] != "I"
    if scheme == "IOB1":
        return tag[0] != "B"
    return tag[0] in "OBS"


def _can_end(scheme: str, tag: tuple[str, str]) -> bool:
    return scheme != "BIOES" or tag[0] in "OES"


def allowed_transitions(scheme: str, labels: Sequence[str]) -> ChainConstraints:
    """Transition, start and end constraints of a chunk tagging scheme.

    * ``"BIO"`` (alias ``"IOB2"``): ``I-X`` only after ``B-X`` or ``I-X``, never first.
    * ``"BIOES"`` (alias ``"IOBES"``): after ``B-X``/``I-X`` only ``I-X`` or ``E-X``;
      otherwise only ``O``, ``B-*`` or ``S-*``; a sequence starts outside a chunk and ends
      on ``O``, ``E-*`` or ``S-*``.
    * ``"IOB1"``: ``I-X`` opens or continues a chunk; ``B-X`` only separates two adjacent
      chunks of type ``X``, so it follows ``B-X`` or ``I-X`` and never comes first.

    Args:
        scheme: Scheme name (case-insensitive).
        labels: Tag strings in tag-index order, e.g. ``["O", "B-PER", "I-PER"]``.

    Returns:
        `ChainConstraints` with ``(K, K)``, ``(K,)`` and ``(K,)``
        bool masks.
    """
    import torch

    from ..structured import ChainConstraints

    name = SCHEMES.get(str(scheme).upper())
    if name is None:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    if len(labels) == 0:
        raise ValueError("labels must not be empty")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be distinct")
    prefixes = {"BIO": "BI", "IOB1": "BI", "BIOES": "BIES"}[name]
    parts = [split_tag(tag, prefixes) for tag in labels]
    transitions = torch.tensor([[_can_follow(name, a, b) for b in parts] for a in parts])
    start = torch.tensor([_can_start(name, tag) for tag in parts])
    end = torch.tensor([_can_end(name, tag) for tag in parts])
    return ChainConstraints(transitions, start, end)


def detect_scheme(tag_sequences: Sequence[Sequence[str]]) -> str | None:
    """The scheme that tag sequences are written in, or ``None`` for plain labels.

    * Tags other than ``O`` and ``P-TYPE`` (one-letter prefix ``P`` of B, I, E, S): plain
      labels such as POS tags (``None``).
    * An ``E-`` or ``S-`` prefix: ``"BIOES"``.
    * Otherwise ``"IOB1"`` when some ``I-X`` opens a chunk (it follows no ``B-X``/``I-X``) and
      every ``B-X`` follows a chunk of type ``X`` (IOB1's only use of ``B``); else ``"BIO"``
      (a corpus of only ``O``, or whose chunks all start with ``B-``, reads the same in both).

    Args:
        tag_sequences: The sentences' tags.

    Raises:
        ValueError: no tag at all.
    """
    tags = [tag for sequence in tag_sequences for tag in sequence]
    if not tags:
        raise ValueError("tag_sequences: no tag to detect a scheme from")
    try:
        prefixes = {split_tag(tag, "BIES")[0] for tag in set(tags)}
    except ValueError:
        return None
    if prefixes & {"E", "S"}:
        return "BIOES"
    opening_i = opening_b = False
    for sequence in tag_sequences:
        previous = ("O", "")
        for tag in sequence:
            prefix, kind = split_tag(tag, "BI")
            continues = previous[0] in "BI" and previous[1] == kind
            opening_i |= prefix == "I" and not continues
            opening_b |= prefix == "B" and not continues
            previous = (prefix, kind)
    return "IOB1" if opening_i and not opening_b else "BIO"


def first_violation(scheme: str, tags: Sequence[str]) -> int | None:
    """Where a tag sequence breaks its scheme's constraints (`allowed_transitions`): the
    index of the first tag that may not start the sequence or follow the previous tag,
    ``len(tags)`` if only the last tag may not end it, or ``None`` if it is well-formed.

    Raises:
        ValueError: an unknown scheme, or a tag outside it.
    """
    name = SCHEMES.get(str(scheme).upper())
    if name is None:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}, got {scheme!r}")
    prefixes = {"BIO": "BI", "IOB1": "BI", "BIOES": "BIES"}[name]
    parts = [split_tag(tag, prefixes) for tag in tags]
    for i, part in enumerate(parts):
        if not (_can_follow(name, parts[i - 1], part) if i else _can_start(name, part)):
            return i
    if parts and not _can_end(name, parts[-1]):
        return len(parts)
    return None
