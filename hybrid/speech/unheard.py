"""Words never trained on, recognised from their pronunciations: the table and picture of a
run folder of such a test (task `TASK`; ``recipes/speech_commands/unheard.py`` writes one).

Each row is one closed list of words (``decoder``: ``"unheard"``, the test words alone, or
``"all"``, the test words among the trained ones) with the clips' ``references`` and
``hypotheses`` as words.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..files import write_text_atomic
from .plots import plot_confusion

__all__ = ["TASK", "draw"]

#: The task of a run folder's rows that recognise words no model was trained on.
TASK = "unheard-words"


def draw(run_dir: Path, results: dict) -> None:
    """``results.md`` and ``confusion.png`` (the closed list of the unheard words) from
    ``results.json`` (``results``) alone."""
    rows = results["rows"]
    lines = [
        f"# {results['corpus']}: words never trained on, from their pronunciations",
        "",
        "| system | closed list | words | clips | accuracy | chance |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        m = row["metrics"]
        lines.append(
            f"| {row['system']} | {row['decoder']} | {m['words']} | {m['clips']} | "
            f"{100 * m['accuracy']:.1f}% | {100 * m['chance']:.1f}% |"
        )
    first = rows[0]
    tested = sorted(set(first["references"]))
    columns = [f"{row['system']}, {row['decoder']}" for row in rows]
    lines += [
        "",
        "Accuracy by word (%):",
        "",
        "| word | clips | " + " | ".join(columns) + " |",
        "| --- | ---: |" + " ---: |" * len(rows),
    ]
    clips = Counter(first["references"])
    for word in tested:
        cells = []
        for row in rows:
            said = [
                h for r, h in zip(row["references"], row["hypotheses"], strict=True) if r == word
            ]
            cells.append(f"{100 * sum(h == word for h in said) / len(said):.1f}")
        lines.append(f"| {word} | {clips[word]} | " + " | ".join(cells) + " |")
    write_text_atomic(run_dir / "results.md", "\n".join(lines) + "\n")
    unheard = next((row for row in rows if row["decoder"] == "unheard"), first)
    vocabulary = unheard["vocabulary"]
    index = {word: i for i, word in enumerate(vocabulary)}
    plot_confusion(
        [index[w] for w in unheard["references"]],
        [index[w] for w in unheard["hypotheses"]],
        vocabulary,
        "words never trained on, recognised from their CMUdict phones",
        run_dir / "confusion.png",
    )
