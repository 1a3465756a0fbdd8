"""The README's latency table is generated from metrics/latency.json, and the README holds the generated text."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
from readme_tables import END, START, render_latency_table, replace_block  # noqa: E402


def timing(ms: float, reference: float) -> dict:
    return {"median_ms": ms, "p90_ms": ms * 1.2, "runs": 50, "ratio_to_reference": ms / reference}


LATENCY = {
    "reference": {"arch": "DeepLabV3Plus", "threads_2": timing(12.0, 12.0)},
    "student": {"arch": "FPN", "encoder": "tu-mobilenetv3_small_100", "params": 1_230_000, "flops": 2_000_000_000,
                "variants": {"ort_fp32": {"file_mb": 4.9, "test_f1_fg": 0.81, "threads_2": timing(6.0, 12.0)},
                             "ort_int8": {"file_mb": 1.4, "test_f1_fg": 0.80, "threads_2": timing(7.2, 12.0)}}},
    "default": "student",
}


def test_the_table_has_one_row_per_variant_and_marks_the_default():
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


def test_replace_block_keeps_the_rest_and_needs_the_markers():
    text = f"intro\n{START}\nold\n{END}\noutro\n"
    assert replace_block(text, "new") == f"intro\n{START}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError, match="markers"):
        replace_block("no markers", "x")


def test_readme_is_in_sync_with_metrics(tmp_path):
    """README.md's block equals what the script renders from the committed metrics/latency.json (or, before the
    first benchmark, the placeholder)."""
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/readme_tables.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_fails_on_a_stale_readme(tmp_path):
    (tmp_path / "latency.json").write_text(json.dumps(LATENCY))
    (tmp_path / "README.md").write_text(f"{START}\nhand-typed\n{END}\n")
    args = [sys.executable, str(REPO_ROOT / "scripts/readme_tables.py"), "--metrics", str(tmp_path / "latency.json"),
            "--readme", str(tmp_path / "README.md")]
    assert subprocess.run([*args, "--check"], capture_output=True).returncode == 1
    assert subprocess.run(args, capture_output=True).returncode == 0
    assert "**default**" in (tmp_path / "README.md").read_text()
    assert subprocess.run([*args, "--check"], capture_output=True).returncode == 0
