"""The documentation site builds without a single warning."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_build_strict(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "mkdocs",
        "build",
        "--strict",
        "--config-file",
        str(ROOT / "mkdocs.yml"),
        "--site-dir",
        str(tmp_path / "site"),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    warnings = [line for line in output.splitlines() if line.startswith("WARNING")]
    assert not warnings, "mkdocs build --strict warned:\n" + output
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_pictures_command_shrinks_plots_into_the_docs(tmp_path, monkeypatch):
    import importlib.util

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    spec = importlib.util.spec_from_file_location("figures", ROOT / "docs" / "figures.py")
    figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures)
    run = tmp_path / "runs" / "atis"
    run.mkdir(parents=True)
    fig, ax = plt.subplots(figsize=(16, 6))
    ax.plot(range(10), range(10))
    fig.savefig(run / "training_curves.png", dpi=150)
    monkeypatch.setattr(figures, "IMAGES", tmp_path / "images")
    monkeypatch.setattr(figures, "FIGURES", {"atis-training.png": ("atis", "training_curves.png")})
    assert figures.main(["--runs", str(tmp_path / "runs")]) == 0
    with Image.open(tmp_path / "images" / "atis-training.png") as picture:
        assert picture.width == figures.WIDTH and picture.mode == "P"
    assert (tmp_path / "images" / "atis-training.png").stat().st_size < (
        run / "training_curves.png"
    ).stat().st_size
    monkeypatch.setattr(figures, "BUDGET", 10)  # over the budget: the command says so
    assert figures.main(["--runs", str(tmp_path / "runs")]) == 1


def test_the_pictures_of_the_docs_exist_and_stay_small():
    images = ROOT / "docs" / "images"
    pictures = sorted(images.glob("*.png")) if images.is_dir() else []
    assert sum(p.stat().st_size for p in pictures) < 2_000_000
    text = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").glob("*.md"))
    for picture in pictures:
        assert f"images/{picture.name}" in text, f"{picture.name} is shown on no docs page"
