"""The documentation's result tables are generated from metrics/, and the documents hold the generated text."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from readme_tables import (  # noqa: E402
    BLOCKS,
    main,
    markers,
    render_latency_table,
    render_synthetic_results,
    replace_block,
)


def timing(ms: float, reference: float) -> dict:
    return {"median_ms": ms, "p90_ms": ms * 1.2, "runs": 50, "ratio_to_reference": ms / reference}


LATENCY = {
    "reference": {"arch": "DeepLabV3Plus", "threads_2": timing(12.0, 12.0)},
    "student": {"arch": "FPN", "encoder": "tu-mobilenetv3_small_100", "params": 1_230_000, "flops": 2_000_000_000,
                "variants": {"ort_fp32": {"file_mb": 4.9, "test_f1_fg": 0.81, "threads_2": timing(6.0, 12.0)},
                             "ort_int8": {"file_mb": 1.4, "test_f1_fg": 0.80, "threads_2": timing(7.2, 12.0)}}},
    "default": "student",
}
SCORES = {"mean_f1_fg": 0.7, "mean_iou_fg": 0.6, "pixel_accuracy": 0.9}
PARSER = {**SCORES, "arch": "regseg", "loss": "ce+dice", "input_size": 128, "test_images": 60,
          "reframed": {"parse_path": SCORES, "photos_with_face": 40, "images": 60}, "onnx_latency_ms": {"median": 97.31}}
INPAINTER = {"inpainter": {"psnr": 18.0, "psnr_whole": 27.0}, "telea": {"psnr": 16.0, "psnr_whole": 26.0},
             "identity_distance": {"inpainter": 0.35, "telea": 0.34, "masked": 0.37}, "onnx_latency_ms": {"median": 86.42}}
FINDER = {"iou": 0.8, "masked_found_rate": 1.0, "clean_found_rate": 0.1, "onnx_latency_ms": 75.53}


def test_the_latency_table_has_one_row_per_variant_and_marks_the_default():
    table = render_latency_table(LATENCY)
    rows = [line for line in table.splitlines() if line.startswith("| student")]
    assert len(rows) == 2
    fp32, int8 = rows
    assert "**default**" in fp32 and "**default**" not in int8
    assert "| 6.0 | 7.2 | 0.50 | 1.23 | 2.00 | 4.90 | 0.810 |" in fp32
    assert "12.0 ms" in table
    assert fp32.startswith("| student (FPN/tu-mobilenetv3_small_100) ")
    own = {**LATENCY, "student": {**LATENCY["student"], "arch": "regseg_slim"}}
    assert "| student (regseg_slim) " in render_latency_table(own)  # the project's own models ignore the encoder


def test_the_synthetic_table_holds_the_scores_and_no_timing():
    table = render_synthetic_results({"parser": PARSER, "inpainter": INPAINTER, "mask_finder": FINDER,
                                      "latency": LATENCY})
    assert "0.700" in table and "18.00 dB (Telea 16.00)" in table and "found in 40 of 60" in table
    assert "`student`" in table and "0.810" in table
    for timing_figure in ("97.3", "86.4", "75.5", " ms"):
        assert timing_figure not in table, timing_figure
    assert "No benchmark metrics yet" in render_synthetic_results({"parser": None, "inpainter": None,
                                                                   "mask_finder": None, "latency": None})


def test_replace_block_keeps_the_rest_and_needs_the_markers():
    start, end = markers("latency-table")
    text = f"intro\n{start}\nold\n{end}\noutro\n"
    assert replace_block(text, "new") == f"intro\n{start}\nnew\n{end}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "x")


def test_the_documents_are_in_sync_with_the_metrics():
    """README.md and docs/deployment.md hold what the script renders from metrics/ (working tree or git HEAD)."""
    assert main(["--check"]) == 0


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def project(tmp_path) -> Path:
    """A git checkout with metrics, a README and docs/deployment.md holding empty generated blocks."""
    (tmp_path / "metrics").mkdir()
    (tmp_path / "docs").mkdir()
    for name, content in (("parser", PARSER), ("inpainter", INPAINTER), ("mask_finder", FINDER), ("latency", LATENCY)):
        (tmp_path / "metrics" / f"{name}.json").write_text(json.dumps(content))
    for block in BLOCKS:
        start, end = markers(block.name)
        path = tmp_path / block.document
        path.write_text((path.read_text() if path.exists() else "") + f"text\n{start}\nhand-typed\n{end}\n")
    git(tmp_path, "init", "-q")
    return tmp_path


def check(root: Path) -> int:
    return main(["--root", str(root), "--check"])


def test_check_fails_on_a_stale_document_and_the_script_mends_it(project):
    assert check(project) == 1
    assert main(["--root", str(project)]) == 0
    assert "**default**" in (project / "docs/deployment.md").read_text()
    assert "0.700" in (project / "README.md").read_text()
    assert check(project) == 0
    (project / "README.md").write_text((project / "README.md").read_text().replace("0.700", "0.750"))
    assert check(project) == 1, "a hand-edited figure passed"


def test_a_repro_on_another_machine_leaves_the_committed_documents_valid(project):
    """make repro rewrites metrics/ with this machine's timings and scores; make test must still pass after it."""
    assert main(["--root", str(project)]) == 0
    git(project, "add", "-A")
    git(project, "commit", "-qm", "documents and metrics")
    other_machine = {**LATENCY, "reference": {"arch": "DeepLabV3Plus", "threads_2": timing(30.0, 30.0)}}
    (project / "metrics/latency.json").write_text(json.dumps(other_machine))
    (project / "metrics/parser.json").write_text(json.dumps({**PARSER, "mean_f1_fg": 0.69}))
    assert check(project) == 0
    shutil.rmtree(project / ".git")  # without the committed metrics only the working tree counts
    assert check(project) == 1
