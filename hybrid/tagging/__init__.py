"""Sequence tagging: corpora, tagging schemes and their constraints, span metrics, the tagger.

The names below load on first use: the readers, schemes and metrics import no torch.
"""

from importlib import import_module

_HOMES = {
    "Sentence": "corpus",
    "Vocabulary": "corpus",
    "read_atis": "corpus",
    "read_conll": "corpus",
    "read_conllu": "corpus",
    "read_jsonl": "corpus",
    "read_slot_folder": "corpus",
    "TaggingFiles": "datasets",
    "load_tagging": "datasets",
    "bio_to_bioes": "metrics",
    "bioes_to_bio": "metrics",
    "extract_spans": "metrics",
    "iob1_to_bio": "metrics",
    "label_scores": "metrics",
    "span_scores": "metrics",
    "allowed_transitions": "schemes",
    "detect_scheme": "schemes",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
