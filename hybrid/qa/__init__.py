"""Question answering over stories: the bAbI format, batching, readers and their training."""

from .babi import TASKS, Question, load_tasks, read_babi, task_file, tokenize
from .batching import QABatch, QAVocabulary, batches, collate

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
