"""Every recipe runs commands that exist with options they accept: each recipe script runs
with a stand-in ``hybrid`` that records its arguments, which the real argument parser then
reads (no training, no data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hybrid.cli import build_parser

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SCRIPTS = sorted(RECIPES.glob("*/run.sh"))

STAND_IN = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["HYBRID_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="the recipes are bash scripts")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.parent.name)
def test_a_recipe_runs_commands_the_command_line_accepts(script, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "hybrid"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HYBRID_CALLS": str(calls),
        "DATA": str(tmp_path / "data"),
        "RUNS": str(tmp_path / "runs"),
    }
    done = subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    invocations = [json.loads(line) for line in calls.read_text().splitlines()]
    assert any(args[0].startswith("train-") for args in invocations)
    parser = build_parser()
    for args in invocations:
        parsed = parser.parse_args(args)  # exits (a test failure) on an unknown option
        if parsed.command.startswith("train-"):
            assert parsed.runs == str(tmp_path / "runs") and parsed.data == str(tmp_path / "data")


def test_every_recipe_folder_has_its_script():
    folders = sorted(p for p in RECIPES.iterdir() if p.is_dir() and p.name != "__pycache__")
    assert folders and all((f / "run.sh").is_file() or (f / "run.py").is_file() for f in folders)
