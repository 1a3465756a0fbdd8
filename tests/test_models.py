"""One shared test base over every registered parser: forward and backward at two input sizes, ONNX == torch.

Each model is built with a tiny encoder and slim decoders so the whole zoo runs in well under a minute on
2 cores. A newly registered model is picked up automatically; give it an entry in SIZES only when it
needs inputs other than 64 and 96 pixels.
"""
import numpy as np
import onnxruntime as ort
import pytest
import torch

from stages.core.common.classes import NUM_CLASSES
from stages.core.models.registry import (
    PARSER_BUILDERS,
    build_parser,
    inference_parameter_count,
    registered_names,
    smp_kwargs,
)
from stages.core.parsing.losses import split_outputs, supervised_loss
from stages.core.parsing.training import export_onnx

TINY = {"encoder": "tu-mobilenetv3_small_050", "encoder_weights": None, "decoder_channels": [32, 16, 16, 8, 8],
        "decoder_width": 32}
SIZES = {"pan": (128, 160)}  # PAN's pyramid attention pools the 1/32 map down by 8 more: 128 px is its minimum
DEFAULT_SIZES = (64, 96)


def tiny_parser(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_parser({"arch": name, **TINY}, NUM_CLASSES)


def test_registry_has_every_smp_arch_and_our_own_models():
    import segmentation_models_pytorch as smp

    names = registered_names()
    assert set(smp.MODEL_ARCHITECTURES_MAPPING) <= set(names)
    assert {"regseg", "ddrnet23_slim"} <= set(names)


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(KeyError, match="regseg"):
        build_parser({"arch": "nope"}, NUM_CLASSES)


def test_arch_names_are_case_insensitive():
    assert type(build_parser({"arch": "RegSeg"}, 3)).__name__ == "RegSeg"


def test_decoder_widths_come_from_params():
    assert smp_kwargs("unet", {"decoder_channels": [64, 48, 32, 16, 16]}, 11)["decoder_channels"] == (64, 48, 32, 16, 16)
    assert smp_kwargs("deeplabv3plus", {"decoder_width": 96}, 11)["decoder_channels"] == 96
    assert smp_kwargs("fpn", {"decoder_width": 64}, 11)["decoder_segmentation_channels"] == 64
    # a list meant for the U-Net family is ignored by single-width decoders, so arch sweeps share one params file
    assert "decoder_channels" not in smp_kwargs("deeplabv3plus", {"decoder_channels": [64, 32]}, 11)
    assert smp_kwargs("unet", {"arch_options": {"decoder_attention_type": "scse"}}, 11)["decoder_attention_type"] == "scse"


@pytest.mark.parametrize("channels", [(64, 48, 32, 16, 16), (32, 16, 16, 8, 8)])
def test_unet_decoder_channels_change_the_model(channels):
    model = build_parser({"arch": "Unet", **TINY, "decoder_channels": list(channels)}, NUM_CLASSES)
    assert model.decoder.blocks[-1].conv2[0].out_channels == channels[-1]


def test_paper_models_have_the_papers_parameter_counts():
    # RegSeg-exp48-decoder26: 3.34 M at 19 classes (paper Table 4); DDRNet-23-slim: 5.7 M (paper Table 5).
    # inference parameters: DDRNet's auxiliary head exists only in training
    counts = {name: inference_parameter_count(build_parser({"arch": name}, 19)) / 1e6 for name in ("regseg", "ddrnet23_slim")}
    assert counts["regseg"] == pytest.approx(3.34, abs=0.02)
    assert counts["ddrnet23_slim"] == pytest.approx(5.7, abs=0.05)


def test_regseg_widths_and_depth_are_options_and_regseg_slim_is_one_setting_of_them():
    default = build_parser({"arch": "regseg"}, NUM_CLASSES)
    slim = build_parser({"arch": "regseg_slim"}, NUM_CLASSES)
    same = build_parser({"arch": "regseg", "arch_options": {
        "widths": [16, 32, 64, 128, 160], "decoder_widths": [64, 32, 8],
        "dilations": [[1], [1, 2], [1, 4], [1, 4], [1, 4], [1, 8], [1, 14], [1, 14], [1, 14]]}}, NUM_CLASSES)
    assert [tuple(v.shape) for v in slim.state_dict().values()] == [tuple(v.shape) for v in same.state_dict().values()]
    assert slim.stem[0].out_channels == 16 and default.stem[0].out_channels == 32
    assert len(slim.body.stage16) == 10 and len(default.body.stage16) == 14
    assert slim.decoder.classifier.in_channels == 32
    assert inference_parameter_count(slim) / 1e6 == pytest.approx(0.75, abs=0.02)


@pytest.mark.parametrize("options, message", [
    ({"width": [16, 32, 64, 128, 160]}, r"unknown arch_options \['width'\]"),
    ({"widths": [16, 32, 64, 128]}, "widths needs 5 numbers"),
    ({"widths": [16, 32, 64, 144, 160]}, "144 channels in 2 dilation branch"),
    ({"widths": [16, 24, 64, 128, 160]}, "24 channels in 1 dilation branch"),
])
def test_regseg_refuses_options_it_cannot_build(options, message):
    with pytest.raises(ValueError, match=message):
        build_parser({"arch": "regseg_slim", "arch_options": options}, NUM_CLASSES)


@pytest.mark.parametrize("name", registered_names())
class TestEveryParser:
    def test_forward_and_backward_at_two_sizes(self, name):
        model = tiny_parser(name).train()
        for size in SIZES.get(name, DEFAULT_SIZES):
            images = torch.randn(2, 3, size, size)
            target = torch.randint(0, NUM_CLASSES, (2, size, size))
            outputs = model(images)
            logits, aux_logits = split_outputs(outputs)
            assert logits.shape == (2, NUM_CLASSES, size, size)
            assert all(aux.shape == logits.shape for aux in aux_logits)
            assert len(aux_logits) == len(getattr(model, "aux_weights", ()))
            loss = supervised_loss(model, outputs, target, torch.nn.functional.cross_entropy)
            model.zero_grad()
            loss.backward()
            params = list(model.parameters())
            grads = [p.grad for p in params if p.grad is not None]
            assert torch.isfinite(loss)
            assert all(torch.isfinite(g).all() for g in grads)
            # the first layer (input side) and the classifier (output side) both learn
            for end in (params[0], params[-1]):
                assert end.grad is not None and float(end.grad.abs().sum()) > 0

    def test_eval_forward_is_deterministic(self, name):
        model = tiny_parser(name).eval()
        size = SIZES.get(name, DEFAULT_SIZES)[0]
        images = torch.randn(1, 3, size, size)
        with torch.no_grad():
            assert torch.equal(model(images), model(images))

    def test_onnx_export_matches_torch(self, name, tmp_path):
        model = tiny_parser(name).eval()
        size = SIZES.get(name, DEFAULT_SIZES)[0]
        export_onnx(model, tmp_path / "parser.onnx", size)
        session = ort.InferenceSession(str(tmp_path / "parser.onnx"), providers=["CPUExecutionProvider"])
        images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
        onnx_logits = session.run(["logits"], {"image": images.numpy()})[0]
        with torch.no_grad():
            torch_logits = model(images).numpy()
        assert onnx_logits.shape == torch_logits.shape
        assert np.abs(onnx_logits - torch_logits).max() < 1e-3


def test_ddrnet_auxiliary_head_trains_the_high_branch_and_is_gone_at_inference():
    torch.manual_seed(0)
    model = build_parser({"arch": "ddrnet23_slim"}, NUM_CLASSES).train()
    images = torch.randn(2, 3, 64, 64)
    logits, (aux,) = split_outputs(model(images))
    assert model.aux_weights == (0.4,)
    aux.sum().backward()  # the auxiliary loss alone reaches the head and the trunk, not the final head
    assert model.aux_head.classifier[-1].weight.grad.abs().sum() > 0
    assert model.stem[0][0].weight.grad.abs().sum() > 0
    assert model.head.classifier[-1].weight.grad is None
    with torch.no_grad():
        assert isinstance(model.eval()(images), torch.Tensor)
    plain = build_parser({"arch": "ddrnet23_slim", "arch_options": {"aux_weight": 0}}, NUM_CLASSES).train()
    assert plain.aux_head is None and isinstance(plain(images), torch.Tensor)
    assert inference_parameter_count(model) == inference_parameter_count(plain) < sum(p.numel() for p in model.parameters())


def test_onnx_batch_axis_is_dynamic(tmp_path):
    model = tiny_parser("regseg").eval()
    export_onnx(model, tmp_path / "parser.onnx", 64)
    session = ort.InferenceSession(str(tmp_path / "parser.onnx"), providers=["CPUExecutionProvider"])
    images = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = model(images).numpy()
    assert np.abs(session.run(["logits"], {"image": images.numpy()})[0] - expected).max() < 1e-3


def test_every_builder_has_a_docstring():
    registered_names()
    assert all(builder.__doc__ for builder in PARSER_BUILDERS.values())
