"""Killing a pipeline stage in the middle of its work, and comparing two runs' outputs.

Killing: the command starts in its own process session; once the stage's ``python -m stages.<name>`` process
is found there (in /proc), the whole session is advanced in small time slices (SIGSTOP / SIGCONT) and, while it
is stopped, a probe on the files on disk decides whether the stage is in the middle of its work; then the
process group gets SIGKILL. Slicing makes the kill land inside short windows (a stage that writes its
output for 30 ms) without depending on how fast the machine is.

Comparing: every non-metric output in dvc.lock by md5, except the few whose bytes embed wall-clock times
(:data:`TIMED_OUTS`), which are compared by content with the timing fields dropped; metrics JSON with the
timing fields dropped; and every dependency's md5 in dvc.lock (but those same timed files).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

# keys holding wall-clock measurements: epoch_seconds, seconds_per_epoch, onnx_latency_ms, timestamp...
TIMING_KEY = re.compile(r"seconds|latency_ms|_ms$|ratio_to_reference|timestamp|duration|(^|_)time($|_)")

# outputs whose bytes hold wall-clock times, so their md5 differs between any two runs: the parser's
# checkpoints (their history has epoch_seconds), its dvclive log and its learning-curve figure (they plot
# epoch_seconds). Everything else in dvc.lock must be byte-identical.
TIMED_OUTS = {
    "models/parser.pt": "checkpoint",
    "models/parser_last.pt": "checkpoint",
    "metrics/train_parser/plots/metrics": "dvclive",
    "metrics/plots/parser_training.png": "figure",
    "metrics/distill/plots/metrics": "dvclive",        # the student's training log
    "metrics/plots/latency_pareto.png": "figure",      # plots measured latencies
}


# ------------------------------------------------------------------------------------------------ processes

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, session id) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0], int(fields[3])


def session_pids(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[1] == sid and stat[0] not in "ZX":
                pids.append(int(entry))
    return pids


def find_stage_process(sid: int, module: str) -> int | None:
    """The pid of ``python -m <module>`` in session ``sid`` (not the ``sh -c`` that started it)."""
    for pid in session_pids(sid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"-m" in argv[:-1] and argv[argv.index(b"-m") + 1] == module.encode():
            return pid
    return None


def alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] not in "ZX"


@dataclass
class Kill:
    killed: bool          # True: the stage process was alive and mid-work when the session got SIGKILL
    returncode: int
    log: str
    why: str              # what happened, in words


def run_and_kill(args: list[str], cwd: Path, env: dict, module: str, mid_work: Callable[[], bool],
                 timeout: float = 300, slice_s: float = 0.003) -> Kill:
    """Run ``args`` in a new session; SIGKILL the session once ``module`` runs and ``mid_work()`` holds.

    ``killed`` is False when the stage process ended (or the command finished) before ``mid_work()`` was
    seen; the command is then left to finish by itself, so that nothing is killed at a random point.
    """
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sid, pid, killed, why = proc.pid, None, False, "the command ended before the stage started"
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"{' '.join(args)}: {module} not mid-work after {timeout} s"
            if pid is None:
                pid = find_stage_process(sid, module)
                if pid is None:
                    time.sleep(0.01)
                    continue
            os.killpg(sid, signal.SIGSTOP)
            if not alive(pid):
                os.killpg(sid, signal.SIGCONT)
                why = "the stage ended before it was seen mid-work"
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
                break
            if mid_work():
                os.killpg(sid, signal.SIGKILL)
                killed, why = True, "killed mid-work"
                break
            os.killpg(sid, signal.SIGCONT)
            time.sleep(slice_s)
    finally:
        if proc.poll() is None:
            os.killpg(sid, signal.SIGKILL)
        proc.wait()
        end = time.monotonic() + 30
        while session_pids(sid) and time.monotonic() < end:  # workers and the stage, reparented, die too
            time.sleep(0.05)
        left = session_pids(sid)
        log.seek(0)
        text = log.read().decode(errors="replace")
        log.close()
    assert not left, f"processes of the killed session still alive: {left}"
    return Kill(killed, proc.returncode, text, why)


def repair_rwlock(root: Path, env: dict) -> bool:
    """Delete ``.dvc/tmp/rwlock`` when a kill left it unreadable; True when it did.

    DVC rewrites that file in place (truncate, then write): a dvc process killed in between leaves it empty,
    and every later dvc command then stops with "Unable to read RWLock-file '.dvc/tmp/rwlock'. JSON structure
    is corrupted". The remedy, which DVC itself gives for stale entries, is to delete the file while no dvc
    command runs. (Entries of killed processes in a readable file need nothing: DVC drops them itself.)
    """
    path = root / ".dvc" / "tmp" / "rwlock"
    try:
        json.loads(path.read_text() or "!")
        return False
    except FileNotFoundError:
        return False
    except ValueError:
        proc = subprocess.run(["dvc", "status"], cwd=root, env=env, capture_output=True, text=True)
        assert proc.returncode != 0 and "Unable to read RWLock-file" in proc.stdout + proc.stderr, (
            "dvc accepted an unreadable rwlock file: " + proc.stdout + proc.stderr)
        path.unlink()
        return True


def signature(path: Path) -> tuple | None:
    """Which version of a file is there (inode, mtime, size), or None when absent."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def any_file(root: Path, *patterns: str) -> bool:
    return any(p.is_file() for pattern in patterns for p in root.glob(pattern))


# ------------------------------------------------------------------------------------------------ comparison

def without_timings(obj):
    """``obj`` with every mapping entry whose key names a wall-clock measurement removed, recursively."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if not TIMING_KEY.search(str(k))}
    if isinstance(obj, (list, tuple)):
        return [without_timings(v) for v in obj]
    return obj


def _stage_entries(dvc_yaml: dict, kind: str) -> set[str]:
    paths = set()
    for stage in dvc_yaml.get("stages", {}).values():
        stage = stage.get("do", stage)
        for entry in stage.get(kind, []) or []:
            paths.add(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


def metrics_paths(root: Path) -> list[str]:
    return sorted(_stage_entries(yaml.safe_load((root / "dvc.yaml").read_text()), "metrics"))


def locked_outs(root: Path) -> dict[str, str]:
    """``{path: md5}`` of every stage output in dvc.lock (outs, metrics and plots alike)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])}


def locked_deps(root: Path) -> dict[tuple[str, str], str]:
    """``{(stage, path): md5}`` of every stage dependency in dvc.lock."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    return {(name, dep["path"]): dep["md5"] for name, stage in lock["stages"].items() for dep in stage.get("deps", [])}


def load_checkpoint(path: Path):
    # weights_only=True: what the loaders are moving to; it fails on anything but tensors and plain data
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_tree(a, b, where: str) -> None:
    """Equal nested data; tensors exactly equal (torch.equal, same dtype); names the first difference."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), f"{where}: tensor vs {type(b)}"
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), f"{where}: tensors differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys differ: {set(a) ^ set(b if isinstance(b, dict) else {})}"
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _dvclive_tables(folder: Path) -> dict[str, list]:
    """Every .tsv under a dvclive plots folder, timing files and columns dropped."""
    tables = {}
    for path in sorted(folder.rglob("*.tsv")):
        rel = str(path.relative_to(folder))
        if TIMING_KEY.search(path.stem):
            continue
        rows = list(csv.DictReader(io.StringIO(path.read_text()), delimiter="\t"))
        tables[rel] = without_timings(rows)
    return tables


def timed_content(root: Path, rel: str):
    """The timing-free content of one of :data:`TIMED_OUTS`."""
    kind, path = TIMED_OUTS[rel], root / rel
    if kind == "checkpoint":
        return without_timings(load_checkpoint(path))
    if kind == "dvclive":
        return _dvclive_tables(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{rel}: not a PNG"
    return None  # a figure of the timings themselves: only its presence and the lock's md5 are checked


def metrics(root: Path) -> dict[str, dict]:
    return {rel: without_timings(json.loads((root / rel).read_text())) for rel in metrics_paths(root)}


def assert_same_outputs(root: Path, reference: Path) -> None:
    """``root``'s pipeline outputs equal ``reference``'s (see the module docstring for what "equal" means)."""
    outs, ref_outs = locked_outs(root), locked_outs(reference)
    assert set(outs) == set(ref_outs), f"dvc.lock outs differ: {set(outs) ^ set(ref_outs)}"
    metric_files = set(metrics_paths(root))
    for rel in sorted(outs):
        if rel in metric_files:
            continue
        if rel in TIMED_OUTS:
            assert_same_tree(timed_content(root, rel), timed_content(reference, rel), rel)
        else:
            assert outs[rel] == ref_outs[rel], f"{rel}: md5 {outs[rel]} != {ref_outs[rel]} of the reference run"
    assert metrics(root) == metrics(reference), "metrics differ (timing fields aside)"
    # the inputs each stage was last run on, too (a stray file in a folder a stage depends on shows here)
    deps, ref_deps = locked_deps(root), locked_deps(reference)
    assert set(deps) == set(ref_deps), f"dvc.lock deps differ: {set(deps) ^ set(ref_deps)}"
    for (stage, rel), md5 in sorted(deps.items()):
        if rel not in TIMED_OUTS:
            assert md5 == ref_deps[stage, rel], f"{stage}: dependency {rel}: md5 {md5} != {ref_deps[stage, rel]}"


def leftovers(root: Path, under: str = "data") -> list[str]:
    """Hidden entries (temporary files or folders of an interrupted write) under ``root/under``."""
    return sorted(str(p.relative_to(root)) for p in (root / under).rglob(".*") if p.name != ".gitignore")
