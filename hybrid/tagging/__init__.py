"""Sequence tagging: corpora, tagging schemes and their constraints, span metrics, the tagger."""

from .corpus import Sentence, Vocabulary, read_atis, read_conll
from .metrics import bio_to_bioes, bioes_to_bio, extract_spans, span_scores
from .schemes import allowed_transitions

__all__ = [
    "Sentence",
    "Vocabulary",
    "allowed_transitions",
    "bio_to_bioes",
    "bioes_to_bio",
    "extract_spans",
    "read_atis",
    "read_conll",
    "span_scores",
]
