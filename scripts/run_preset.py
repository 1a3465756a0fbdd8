"""Run a params preset (``presets/<name>.yaml``) as one DVC experiment.

Usage, from the project root::

    .venv/bin/python scripts/run_preset.py celebamask_hq_regseg            # dvc exp run -n celebamask_hq_regseg -S ...
    .venv/bin/python scripts/run_preset.py celebamask_hq_regseg --dry-run  # print the command only
    .venv/bin/python scripts/run_preset.py presets/my.yaml --queue --name try1
    .venv/bin/python scripts/run_preset.py celebamask_hq_calibration --name calib-14ep -S parser.epochs=14

Every key is checked against ``params.yaml`` first (a misspelt key is an error here, not a silently added param).
With ``--queue``, relative ``uri`` paths are made absolute: queued runs execute in a temporary copy of the project.
Compare runs afterwards with ``dvc exp show`` and ``dvc metrics diff``.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stages.core.common.params import load_params
from stages.core.common.presets import PresetError, absolute_paths, exp_run_command, flatten_overrides, load_preset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a name in presets/ or a path to a preset YAML file")
    parser.add_argument("--name", help="experiment name (default: the preset's file name)")
    parser.add_argument("--queue", action="store_true", help="queue the experiment; start it with `dvc queue start`")
    parser.add_argument("--dry-run", action="store_true", help="print the dvc command without running it")
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra `dvc exp run -S` override applied after the preset's (repeatable)")
    args = parser.parse_args(argv)

    try:
        preset = load_preset(args.preset, ROOT / "presets")
        pairs = flatten_overrides(preset, load_params(ROOT / "params.yaml"), source=str(args.preset))
    except PresetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = args.name or Path(args.preset).stem
    if args.queue:
        pairs = absolute_paths(pairs, ROOT)
    command = exp_run_command(pairs, name=name, queue=args.queue)
    for override in args.set_param:
        command += ["-S", override]
    print(shlex.join(command), flush=True)
    if args.dry_run:
        return 0
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
