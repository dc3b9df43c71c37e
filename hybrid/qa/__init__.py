"""Question answering over stories: the bAbI format, batching, readers and their training.

The names below load on first use: the bAbI reader and `hybrid.qa.text` import no torch.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_HOMES = {
    "TASKS": ".babi",
    "Question": ".babi",
    "load_tasks": ".babi",
    "read_babi": ".babi",
    "task_file": ".babi",
    "tokenize": ".babi",
    "QABatch": ".batching",
    "QAVocabulary": ".batching",
    "batches": ".batching",
    "collate": ".batching",
}
__all__ = [
    "TASKS",
    "QABatch",
    "QAVocabulary",
    "Question",
    "batches",
    "collate",
    "load_tasks",
    "read_babi",
    "task_file",
    "tokenize",
]

__getattr__, __dir__ = lazy_names(__name__, _HOMES)

if TYPE_CHECKING:
    from .babi import TASKS, Question, load_tasks, read_babi, task_file, tokenize
    from .batching import QABatch, QAVocabulary, batches, collate
