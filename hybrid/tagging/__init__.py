"""Sequence tagging: corpora, tagging schemes and their constraints, span metrics, the tagger."""

from .corpus import (
    Sentence,
    Vocabulary,
    read_atis,
    read_conll,
    read_conllu,
    read_jsonl,
    read_slot_folder,
)
from .datasets import TaggingFiles, load_tagging
from .metrics import (
    bio_to_bioes,
    bioes_to_bio,
    extract_spans,
    iob1_to_bio,
    label_scores,
    span_scores,
)
from .schemes import allowed_transitions, detect_scheme

__all__ = [
    "Sentence",
    "TaggingFiles",
    "Vocabulary",
    "allowed_transitions",
    "bio_to_bioes",
    "bioes_to_bio",
    "detect_scheme",
    "extract_spans",
    "iob1_to_bio",
    "label_scores",
    "load_tagging",
    "read_atis",
    "read_conll",
    "read_conllu",
    "read_jsonl",
    "read_slot_folder",
    "span_scores",
]
