"""Generated stories in the manner of bAbI task 1 ("where is Mary?"), no download.

People move between places; every few statements a question asks where one of them is.
The answer is the place of that person's most recent move, which is also the one
supporting fact. Names, places and verbs differ from bAbI's, so nobody mistakes its scores
for the real task's.
"""

from __future__ import annotations

import random

from .babi import Question

SYNTHETIC_NOTICE = (
    "Note: the 'synthetic' corpus is generated task-1-style stories (people moving between "
    "places), not the bAbI tasks; its errors do not compare with published bAbI figures."
)

PEOPLE = ("anna", "bruno", "chen", "dora", "emil", "fatima")
PLACES = ("attic", "cellar", "porch", "studio", "pantry", "library", "garage")
VERBS = (("walked", "to"), ("ran", "to"), ("went", "back", "to"), ("hurried", "to"))


def generate_stories(questions: int, seed: int = 0, task: int = 1) -> list[Question]:
    """``questions`` generated questions, in stories of up to five questions each.

    Each story has 2-10 statements; a question follows every one to three statements and
    asks about someone who has moved. Deterministic for a given ``seed``.

    Raises:
        ValueError: if ``questions`` is not a positive integer.
    """
    if isinstance(questions, bool) or not isinstance(questions, int) or questions < 1:
        raise ValueError(f"questions must be a positive integer, got {questions!r}")
    rng = random.Random(seed)
    out: list[Question] = []
    while len(out) < questions:
        story: list[tuple[str, ...]] = []
        where: dict[str, tuple[str, int]] = {}  # person -> (place, statement index)
        for _ in range(rng.randint(1, 5)):
            for _ in range(rng.randint(1, 3)):
                person, place = rng.choice(PEOPLE), rng.choice(PLACES)
                where[person] = (place, len(story))
                story.append((person, *rng.choice(VERBS), "the", place))
            person = rng.choice(sorted(where))
            place, index = where[person]
            out.append(Question(tuple(story), ("where", "is", person), (place,), (index,), task))
            if len(out) == questions:
                break
    return out
