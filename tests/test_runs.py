"""Run folders: the one results.json schema, refused reruns, merged rows (also from processes
writing at the same moment), summaries over seeds, and the side-by-side report."""

from __future__ import annotations

import json
import multiprocessing
import statistics

import pytest

from hybrid.report import comparison, write_report
from hybrid.runs import FORMAT, RunFolder, environment, read_results, summarise

SETTINGS = {"model": {"hidden": 8}, "training": {"epochs": 2, "lr": 0.1}}


def folder(path, domain="tagging", primary=("f1", True)):
    return RunFolder(path, domain, primary)


def row(system, seed, f1, split="test", **more):
    return {"system": system, "seed": seed, "split": split, "metrics": {"f1": f1}, **more}


def test_a_new_folder_gets_the_schema(tmp_path):
    run = folder(tmp_path / "run")
    claimed = run.claim("atis", SETTINGS, data={"train": [{"path": "a", "sha256": "x"}]})
    saved = json.loads(run.results_path.read_text())
    assert saved == claimed
    assert saved["format"] == FORMAT and saved["domain"] == "tagging"
    assert saved["primary"] == {"metric": "f1", "higher": True, "split": "test"}
    assert saved["rows"] == [] and saved["settings"] == SETTINGS and saved["corpus"] == "atis"


def test_a_rerun_with_other_settings_is_refused_naming_them(tmp_path):
    run, data = folder(tmp_path), {"train": [{"path": "a", "sha256": "x"}]}
    run.claim("atis", SETTINGS, data)
    run.claim("atis", SETTINGS, {"train": [{"path": "elsewhere/a", "sha256": "x"}]})  # moved
    other = {**SETTINGS, "model": {"hidden": 16}}
    with pytest.raises(ValueError, match=r"results.json .*settings\.model\.hidden: 8 there, 16"):
        run.claim("atis", other)
    with pytest.raises(ValueError, match=r"corpus: 'atis' there, 'conll2000' asked"):
        run.claim("conll2000", SETTINGS)
    with pytest.raises(ValueError, match=r"data\.train: \['x'\] there, \['y'\] asked"):
        run.claim("atis", SETTINGS, data={"train": [{"path": "a", "sha256": "y"}]})


def test_raising_the_epochs_records_the_change_and_drops_stale_rows(tmp_path):
    run = folder(tmp_path)
    run.claim("atis", SETTINGS, may_raise=["training.epochs"])
    run.add_rows([row("crf", 0, 0.9), row("softmax", 0, 0.8)])
    more = {**SETTINGS, "training": {"epochs": 4, "lr": 0.1}}
    claimed = run.claim(
        "atis", more, may_raise=["training.epochs"], stale=lambda r, _: r["system"] == "crf"
    )
    assert [r["system"] for r in claimed["rows"]] == ["softmax"]
    assert claimed["changes"][0]["changed"] == {"training.epochs": [2, 4]}
    with pytest.raises(ValueError, match="epochs"):  # lowered: refused
        run.claim("atis", SETTINGS, may_raise=["training.epochs"])


def test_rows_merge_and_replace_by_key_and_are_summarised(tmp_path):
    run = folder(tmp_path)
    run.claim("atis", SETTINGS)
    drawn = []
    run.add_rows([row("crf", 0, 0.90), row("crf", 1, 0.94)], drawn.append)
    merged = run.add_rows([row("crf", 1, 0.92), row("crf", 2, 0.95), row("crf", 0, 0.5, "dev")])
    assert len(merged["rows"]) == 4 and len(drawn) == 1 and drawn[0]["rows"][1]["seed"] == 1
    test = [r["metrics"]["f1"] for r in merged["rows"] if r["split"] == "test"]
    assert sorted(test) == [0.90, 0.92, 0.95]  # seed 1's row replaced
    (entry,) = [s for s in merged["summary"] if s["split"] == "test"]
    assert entry["mean"] == pytest.approx(statistics.fmean(test))
    assert entry["std"] == pytest.approx(statistics.stdev(test)) and entry["seeds"] == 3
    with pytest.raises(ValueError, match=r"rows must have \['metrics'\]"):
        run.add_rows([{"system": "crf", "seed": 0, "split": "test"}])


def test_summaries_skip_missing_values_and_keep_tasks_apart():
    rows = [
        row("memory", 0, 0.1, task=1),
        row("memory", 1, float("nan"), task=1),
        row("memory", 0, 0.3, task=2),
        {**row("memory", 2, None, task=2), "metrics": {"f1": None, "loss": 2.0}},
    ]
    summary = {(s["task"], s["metric"]): s for s in summarise(rows)}
    assert summary[(1, "f1")]["seeds"] == 1 and summary[(1, "f1")]["std"] == 0.0
    assert summary[(2, "f1")]["mean"] == 0.3 and summary[(2, "loss")]["mean"] == 2.0


def _add_many(path, worker, count):
    run = folder(path)
    for i in range(count):
        run.add_rows([row(f"system{worker}", i, i / count)])


def test_processes_writing_at_the_same_moment_lose_no_row(tmp_path):
    run = folder(tmp_path)
    run.claim("atis", SETTINGS)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(tmp_path, w, 25)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    saved = read_results(tmp_path)
    assert len(saved["rows"]) == 75
    assert {(r["system"], r["seed"]) for r in saved["rows"]} == {
        (f"system{w}", i) for w in range(3) for i in range(25)
    }


def test_an_older_results_json_is_refused_naming_it(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"runs": [], "summary": {}}))
    with pytest.raises(ValueError, match=r"results.json is not a run folder's results.json"):
        read_results(tmp_path)
    with pytest.raises(ValueError, match=r"results.json is not a run folder's"):
        folder(tmp_path).claim("atis", SETTINGS)
    with pytest.raises(ValueError, match=r"nowhere.*does not exist"):
        read_results(tmp_path / "nowhere")


def test_environment_says_where_a_row_ran():
    found = environment("cpu")
    assert found["device"] == "cpu" and found["processes"] == 1 and found["threads"] >= 1
    assert {"hybrid", "torch", "python", "platform", "commit"} <= found.keys()


def test_report_compares_runs_side_by_side(tmp_path):
    for corpus, scores in (("atis", (0.95, 0.96)), ("conll2000", (0.94, 0.93))):
        run = folder(tmp_path / corpus)
        run.claim(corpus, SETTINGS)
        run.add_rows([row("crf", s, f1) for s, f1 in enumerate(scores)] + [row("softmax", 0, 0.9)])
    columns, table, metric, higher, split = comparison([tmp_path / "atis", tmp_path / "conll2000"])
    assert columns == ["atis (atis)", "conll2000 (conll2000)"] and metric == "f1" and higher
    assert split == "test"
    mean, std, seeds = table["crf"]["atis (atis)"]
    assert mean == pytest.approx(95.5) and std == pytest.approx(
        100 * statistics.stdev([0.95, 0.96])
    )
    assert seeds == 2 and table["softmax"]["conll2000 (conll2000)"][2] == 1
    text = write_report([tmp_path / "atis", tmp_path / "conll2000"], tmp_path / "report")
    assert "| crf | 95.50 ± 0.71 (2) | 93.50 ± 0.71 (2) |" in text
    assert (tmp_path / "report" / "report.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no rows of split 'dev'"):
        comparison([tmp_path / "atis"], split="dev")


def test_the_command_prints_and_writes_the_report(tmp_path, capsys):
    from hybrid.cli import main

    for corpus in ("atis", "conll2000"):
        run = folder(tmp_path / corpus)
        run.claim(corpus, SETTINGS)
        run.add_rows([row("crf", 0, 0.9), row("softmax", 0, 0.8)])
    out = tmp_path / "report"
    assert (
        main(["report", str(tmp_path / "atis"), str(tmp_path / "conll2000"), "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "| softmax | 80.00 ± 0.00 (1) | 80.00 ± 0.00 (1) |" in printed
    assert (out / "report.md").read_text() in printed and (out / "report.png").exists()
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist: expected the results.json" in capsys.readouterr().err


def test_version(capsys):
    from hybrid import __version__
    from hybrid.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"hybrid {__version__}\n"


def test_a_folder_of_another_domain_is_refused_by_name(tmp_path):
    folder(tmp_path, domain="tagging").claim("atis", SETTINGS)
    qa = folder(tmp_path, domain="qa", primary=("error", False))
    with pytest.raises(ValueError, match=r"results.json holds a tagging run, not a qa run"):
        qa.claim("atis", SETTINGS)
    with pytest.raises(ValueError, match=r"holds a tagging run, not a qa run"):
        qa.redraw(lambda results: None)
    from hybrid.qa.experiment import redraw

    with pytest.raises(ValueError, match=r"holds a tagging run, not a qa run"):
        redraw(tmp_path)
