"""Params presets: flattening into `dvc exp run -S` pairs, key checks, and the presets shipped in presets/."""
from pathlib import Path

import pytest
import yaml

from stages.core.common.params import load_params
from stages.core.common.presets import (
    PresetError,
    absolute_paths,
    exp_run_command,
    flatten_overrides,
    format_value,
    load_preset,
)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "loss": "ce",
    "data": {"sources": ["synthetic"], "real": {"uri": "x", "sha256": None}},
    "parser": {"epochs": 8, "augment": {"hflip": 0.5, "affine": 0}, "arch_options": {}},
    "distill": {"student": {"arch": "FPN"}},
}


def test_nested_keys_become_dotted_pairs_in_file_order():
    preset = {"loss": "ce+dice", "parser": {"epochs": 12, "augment": {"affine": 0.5}}}
    assert flatten_overrides(preset, PARAMS) == [("loss", "ce+dice"), ("parser.epochs", 12), ("parser.augment.affine", 0.5)]


def test_unknown_key_is_an_error_naming_the_file_and_key():
    with pytest.raises(PresetError, match=r"my\.yaml: 'parser\.augment\.hlfip' is not a key"):
        flatten_overrides({"parser": {"augment": {"hlfip": 1}}}, PARAMS, source="my.yaml")


def test_mapping_over_scalar_and_scalar_over_mapping_are_errors():
    with pytest.raises(PresetError, match="'loss' is a mapping in the preset"):
        flatten_overrides({"loss": {"a": 1}}, PARAMS)
    with pytest.raises(PresetError, match="'parser.augment' is a mapping in params.yaml"):
        flatten_overrides({"parser": {"augment": 0.5}}, PARAMS)


def test_the_students_overrides_take_new_parser_keys_which_dvc_adds(tmp_path):
    from dvc.utils.hydra import apply_overrides

    preset = {"distill": {"student": {"arch": "regseg_slim", "epochs": 26}}}
    pairs = flatten_overrides(preset, PARAMS)
    assert pairs == [("distill.student.arch", "regseg_slim"), ("+distill.student.epochs", 26)]
    with pytest.raises(PresetError, match=r"'distill\.student\.epoch'.*'parser' section.*'epoch' is not one"):
        flatten_overrides({"distill": {"student": {"epoch": 26}}}, PARAMS)
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(PARAMS))
    apply_overrides(params_file, [arg for arg in exp_run_command(pairs)[3:] if arg != "-S"])
    assert yaml.safe_load(params_file.read_text())["distill"]["student"] == {"arch": "regseg_slim", "epochs": 26}


def test_empty_mapping_replaces_an_empty_mapping():
    assert flatten_overrides({"parser": {"arch_options": {}}}, PARAMS) == [("parser.arch_options", {})]


@pytest.mark.parametrize("value", ["ce+dice", "regseg", "tu-mobilenetv3_small_100", "null", "a,b", "", "../x/y",
                                   0.0001, 12, True, None, [64, 48, 32], ["celebamask_hq"], {}, {"k": [1, 2]}])
def test_formatted_values_survive_dvcs_own_set_param_parser(value, tmp_path):
    # `dvc exp run -S` hands the override to Hydra, then writes params.yaml: run exactly that code path
    from dvc.utils.hydra import apply_overrides

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"key": "old", "other": 1}))
    apply_overrides(params_file, [f"key={format_value(value)}"])
    assert yaml.safe_load(params_file.read_text()) == {"key": value, "other": 1}


def test_a_whole_preset_applied_by_dvc_gives_the_merged_params(tmp_path):
    from dvc.utils.hydra import apply_overrides

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(PARAMS))
    preset = {"loss": "ce+dice", "data": {"sources": ["real", "synthetic"], "real": {"uri": "../d/x"}},
              "parser": {"augment": {"affine": 0.5}}}
    pairs = flatten_overrides(preset, PARAMS)
    apply_overrides(params_file, [arg for arg in exp_run_command(pairs)[3:] if arg != "-S"])
    expected = yaml.safe_load(yaml.safe_dump(PARAMS))
    expected["loss"] = "ce+dice"
    expected["data"]["sources"] = ["real", "synthetic"]
    expected["data"]["real"]["uri"] = "../d/x"
    expected["parser"]["augment"]["affine"] = 0.5
    assert yaml.safe_load(params_file.read_text()) == expected


def test_exp_run_command():
    command = exp_run_command([("loss", "focal"), ("data.sources", ["a", "b"])], name="run1", queue=True)
    assert command == ["dvc", "exp", "run", "-n", "run1", "--queue", "-S", "loss=focal", "-S", "data.sources=[a,b]"]


def test_relative_uri_becomes_absolute_remote_and_other_keys_stay(tmp_path):
    pairs = [("data.real.uri", "../shared/x"), ("data.web.uri", "https://h/x.zip"), ("loss", "../not-a-path")]
    resolved = dict(absolute_paths(pairs, tmp_path / "project"))
    assert resolved["data.real.uri"] == str((tmp_path / "shared" / "x").resolve())
    assert resolved["data.web.uri"] == "https://h/x.zip"
    assert resolved["loss"] == "../not-a-path"


def test_missing_preset_lists_the_available_ones(tmp_path):
    with pytest.raises(PresetError, match="no such preset.*celebamask_hq_regseg"):
        load_preset("no_such_preset", ROOT / "presets")
    assert load_preset("celebamask_hq_regseg", ROOT / "presets")["parser"]["arch"] == "regseg"
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(PresetError, match="non-empty mapping"):
        load_preset(empty)


@pytest.mark.parametrize("path", sorted((ROOT / "presets").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_presets_match_params_yaml(path):
    pairs = flatten_overrides(load_preset(path), load_params(ROOT / "params.yaml"), source=path.name)
    keys = [key for key, _ in pairs]
    assert "data.sources" in keys and "parser.arch" in keys


def test_shipped_presets_exist():
    assert len(list((ROOT / "presets").glob("*.yaml"))) >= 2


def _run_preset_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_preset", ROOT / "scripts" / "run_preset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_preset_dry_run_prints_the_command_with_extra_overrides_last(capsys):
    rc = _run_preset_script().main(["celebamask_hq_calibration", "--dry-run", "--name", "c14", "-S", "parser.epochs=14"])
    command = capsys.readouterr().out.strip()
    assert rc == 0
    assert command.startswith("dvc exp run -n c14 -S loss=ce ")
    assert command.endswith("-S parser.epochs=9 -S parser.batch_size=8 -S parser.optimizer=adamw -S parser.lr=0.003 "
                            "-S parser.weight_decay=0.0001 -S parser.scheduler=cosine -S parser.max_minutes=0 "
                            "-S parser.class_weights=none -S parser.augment.hflip=0.5 -S parser.augment.affine=0 "
                            "-S parser.augment.color_jitter=0 -S parser.augment.coarse_dropout=0 -S parser.augment.blur=0 "
                            "-S parser.augment.noise=0 -S parser.augment.jpeg=0 -S inpainter.epochs=1 "
                            "-S inpainter.loss.ssim_kind=ms_ssim -S mask_finder.epochs=8 -S deploy.calibration_images=32 "
                            "-S benchmark.latency_runs=50 -S parser.epochs=14")


def test_run_preset_rejects_a_stale_preset_before_dvc_runs(tmp_path, capsys):
    stale = tmp_path / "stale.yaml"
    stale.write_text("parser:\n  epochz: 3\n")
    assert _run_preset_script().main([str(stale), "--dry-run"]) == 2
    assert "'parser.epochz' is not a key of params.yaml" in capsys.readouterr().err
