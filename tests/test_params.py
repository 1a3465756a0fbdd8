"""Each params section is one typed object: its defaults equal params.yaml, and a typo or a bad value fails
with the file and the key's name."""
from __future__ import annotations

import pytest
import yaml
from conftest import REPO_ROOT

from stages.core.common.params import ParamsError, load_params
from stages.core.data.cache_arrays import CacheParams
from stages.core.data.sources import SyntheticSource
from stages.core.data.unify import UnifySettings
from stages.core.inference.enhance import EnhanceParams
from stages.core.inference.training_framing import FramingParams
from stages.core.inpainting.training import InpainterParams
from stages.core.mask_finding.training import MaskFinderParams
from stages.core.masks.config import MaskParams
from stages.core.parsing.distillation import DistillParams
from stages.core.parsing.evaluation import BenchmarkParams
from stages.core.parsing.export import DeployParams
from stages.core.parsing.training import ParserParams, check_loss_spec

SECTIONS = [UnifySettings, CacheParams, FramingParams, ParserParams, InpainterParams, BenchmarkParams, EnhanceParams,
            MaskFinderParams, DistillParams, DeployParams]
PARAMS = load_params(REPO_ROOT / "params.yaml")


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.SECTION)
def test_code_defaults_equal_params_yaml(cls):
    assert cls.from_params(PARAMS[cls.SECTION]) == cls()


def test_synthetic_source_defaults_equal_params_yaml():
    assert SyntheticSource.from_params(PARAMS["data"]["synthetic"]) == SyntheticSource()


def test_mask_defaults_equal_params_yaml():
    assert MaskParams.from_dict(PARAMS["masks"]) == MaskParams()


def test_params_yaml_loss_is_valid():
    assert check_loss_spec(PARAMS["loss"]) == PARAMS["loss"]


@pytest.mark.parametrize("cls", SECTIONS, ids=lambda c: c.SECTION)
def test_an_unknown_key_is_refused_by_name(cls):
    with pytest.raises(ParamsError, match=rf"params.yaml: {cls.SECTION}\.typo_key: unknown key"):
        cls.from_params({**PARAMS[cls.SECTION], "typo_key": 1})


@pytest.mark.parametrize(("values", "message"), [
    ({"epchs": 3}, r"parser\.epchs: unknown key"),
    ({"augment": {"hflpi": 0.5}}, r"parser\.augment\.hflpi: unknown key"),
    ({"epochs": "ten"}, r"parser\.epochs: .*integer.*'ten'"),
    ({"epochs": -1}, r"parser\.epochs: .*greater than or equal to 1"),
    ({"arch": "unet3000"}, r"parser\.arch: .*unknown architecture.*regseg"),
    ({"optimizer": "adamz"}, r"parser\.optimizer: .*unknown optimizer"),
    ({"scheduler": "step"}, r"parser\.scheduler: "),
    ({"class_weights": "median"}, r"parser\.class_weights"),
    ({"augment": {"hflip": 1.5}}, r"parser\.augment\.hflip: .*less than or equal to 1"),
])
def test_bad_parser_values_name_the_key(values, message):
    with pytest.raises(ParamsError, match=message):
        ParserParams.from_params(values)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ParamsError) as err:
        UnifySettings.from_params({"val_fraction": "a lot", "on_error": "ignore"})
    assert "remap.val_fraction" in str(err.value) and "remap.on_error" in str(err.value)


def test_a_section_that_is_not_a_mapping_is_refused():
    with pytest.raises(ParamsError, match="cache must be a mapping"):
        CacheParams.from_params([256])


def test_cache_size_must_suit_the_parsers_stride():
    with pytest.raises(ParamsError, match=r"cache\.size: .*multiple of 32"):
        CacheParams.from_params({"size": 250})


@pytest.mark.parametrize("spec", ["ce+dcie", "", 3, "ce++dice"])
def test_an_unknown_loss_is_refused(spec):
    with pytest.raises(ParamsError, match="loss: unknown loss"):
        check_loss_spec(spec)


def test_load_reads_the_named_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"benchmark": {"threads": 1, "latency_runs": 5}}))
    assert BenchmarkParams.load(path) == BenchmarkParams(threads=1, latency_runs=5)
    path.write_text(yaml.safe_dump({"benchmark": {"threads": 0}}))
    with pytest.raises(ParamsError, match=rf"{path}: benchmark\.threads"):
        BenchmarkParams.load(path)
    with pytest.raises(ParamsError, match="no 'inpainter' section"):
        InpainterParams.load(path)


def test_parser_params_round_trip_through_a_checkpoint_config():
    params = ParserParams(epochs=3, augment={"hflip": 0.0})
    assert ParserParams.from_params(params.as_dict()) == params
