"""The deployable graph, int8 quantisation, the default's choice, distillation and the latency table."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from stages.core.common.classes import NUM_CLASSES
from stages.core.common.params import ParamsError
from stages.core.common.torch_utils import save_checkpoint
from stages.core.data.cache_arrays import CachedSplit
from stages.core.inference.parsing import ParserModel
from stages.core.models.preprocessing import images_to_tensor
from stages.core.models.registry import build_parser
from stages.core.parsing.distillation import DistillParams, TeacherLoss, distillation_loss, fit_student, student_params
from stages.core.parsing.export import DeployableParser, choose_default, export_deployable_onnx
from stages.core.parsing.latency import ExportedModel, interleaved_latency_ms, latency_table, pareto_front, table_rows
from stages.core.parsing.quantization import quantize_int8
from stages.core.parsing.sessions import ort_session, predict_labels_onnx

SIZE = 64
TINY = {"arch": "Unet", "encoder": "tu-mobilenetv3_small_050", "encoder_weights": None,
        "decoder_channels": [16, 16, 8, 8, 8]}


def tiny_model(seed: int = 0, cfg: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_parser(cfg or TINY, NUM_CLASSES).eval()


def photos(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    model = tiny_model()
    export_deployable_onnx(model, root / "m.onnx", SIZE)
    quantize_int8(root / "m.onnx", root / "m_int8.onnx", photos(4, 1))
    return model, root


def test_the_deployable_graph_takes_uint8_photos_and_matches_torch(exported):
    model, root = exported
    images = photos(3, 2)
    session = ort_session(root / "m.onnx", 1)
    assert session.get_inputs()[0].type == "tensor(uint8)"
    labels, logits = session.run(["labels", "logits"], {"image": images})
    with torch.no_grad():
        expected = model(images_to_tensor(images)).numpy()
    assert labels.dtype == np.uint8 and labels.shape == (3, SIZE, SIZE)
    assert logits.shape == (3, NUM_CLASSES, SIZE, SIZE)
    np.testing.assert_allclose(logits, expected, atol=1e-3)
    assert (labels == expected.argmax(1)).mean() > 0.999


def test_torch_wrapper_normalises_like_training():
    model = tiny_model()
    images = photos(2, 3)
    with torch.no_grad():
        labels, logits = DeployableParser(model)(torch.from_numpy(images))
        expected = model(images_to_tensor(images))
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert labels.dtype == torch.uint8


def test_int8_copy_is_per_channel_qdq_and_close_to_fp32(exported):
    _, root = exported
    graph = onnx.load(root / "m_int8.onnx")
    ops = {node.op_type for node in graph.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    per_channel = [n for n in graph.graph.node if n.op_type == "DequantizeLinear"
                   and any(a.name == "axis" for a in n.attribute)]
    assert per_channel, "weights should be quantised per output channel"
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    images = photos(2, 1)  # calibration photos: the int8 logits must track the fp32 ones
    fp32 = ort_session(root / "m.onnx", 1).run(["logits"], {"image": images})[0]
    int8 = ort_session(root / "m_int8.onnx", 1).run(["logits"], {"image": images})[0]
    assert np.corrcoef(fp32.ravel(), int8.ravel())[0, 1] > 0.9


def test_int8_weights_use_seven_bits_so_avx2_cpus_do_not_saturate(exported):
    _, root = exported
    graph = onnx.load(root / "m_int8.onnx")
    weights = [onnx.numpy_helper.to_array(t) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights, "the int8 copy should hold int8 weights"
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64


def test_quantize_refuses_empty_calibration(exported, tmp_path):
    _, root = exported
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(root / "m.onnx", tmp_path / "x.onnx", photos(0))


def test_parser_model_reads_the_deployable_graph(exported):
    _, root = exported
    parser = ParserModel(root / "m.onnx", threads=1)
    assert parser.deployable and parser.size == SIZE
    images = photos(2, 4)
    probs = parser.probabilities(images)
    assert probs.shape == (2, SIZE, SIZE, NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(-1), 1, atol=1e-5)
    assert (parser.labels(images) == probs.argmax(-1)).mean() > 0.999


def test_parser_model_still_reads_a_float_graph(tmp_path):
    """Exports of earlier versions (float NCHW in, logits out) keep working, with numpy normalisation."""
    from stages.core.parsing.training import export_onnx

    model = tiny_model()
    export_onnx(model, tmp_path / "old.onnx", SIZE)
    parser = ParserModel(tmp_path / "old.onnx", threads=1)
    assert not parser.deployable and parser.size == SIZE
    images = photos(2, 5)
    with torch.no_grad():
        expected = model(images_to_tensor(images)).numpy().argmax(1)
    assert (parser.labels(images) == expected).mean() > 0.999


@pytest.mark.parametrize(("f1", "expected"), [
    ({"student": 0.80, "student_int8": 0.80, "parser_int8": 0.805, "parser": 0.81}, "student"),
    ({"student": 0.70, "student_int8": 0.70, "parser_int8": 0.805, "parser": 0.81}, "parser_int8"),
    ({"student": 0.70, "student_int8": 0.70, "parser_int8": 0.79, "parser": 0.81}, "parser"),
])
def test_the_default_is_the_first_candidate_within_the_f1_budget(f1, expected):
    chosen, reasons = choose_default(f1, ["student", "student_int8", "parser_int8", "parser"], 0.01, 0.005)
    assert chosen == expected
    assert reasons[chosen].startswith("chosen")
    assert set(reasons) == set(f1)


def test_an_int8_copy_that_loses_too_much_is_refused():
    f1 = {"student_int8": 0.79, "student": 0.80}
    chosen, reasons = choose_default(f1, ["student_int8", "student"], 0.05, 0.005)
    assert chosen == "student" and "int8 loses" in reasons["student_int8"]


def test_distillation_loss_is_zero_for_equal_logits_and_pulls_the_student():
    teacher = torch.randn(2, NUM_CLASSES, 8, 8)
    assert distillation_loss(teacher, teacher, 2.0).item() == pytest.approx(0, abs=1e-6)
    student = torch.zeros_like(teacher, requires_grad=True)
    loss = distillation_loss(student, teacher, 2.0)
    loss.backward()
    assert loss.item() > 0
    step = student - student.grad  # one gradient step moves the student's softmax towards the teacher's
    assert distillation_loss(step.detach(), teacher, 2.0) < loss


def test_teacher_loss_blends_by_weight():
    teacher = torch.nn.Conv2d(3, NUM_CLASSES, 1)
    images, outputs = torch.randn(1, 3, 8, 8), torch.randn(1, NUM_CLASSES, 8, 8)
    supervised = torch.tensor(1.0)
    assert TeacherLoss(teacher, 2.0, 0.0)(images, outputs, supervised) is supervised
    soft = distillation_loss(outputs, teacher(images).detach(), 2.0)
    blended = TeacherLoss(teacher, 2.0, 0.25)(images, outputs, supervised)
    assert blended.item() == pytest.approx(0.75 + 0.25 * soft.item(), rel=1e-5)


def test_student_params_override_the_parser_section():
    cfg = student_params({**TINY, "epochs": 3, "resume": "models/parser_last.pt"},
                         DistillParams(student={"arch": "FPN", "decoder_width": 16}))
    assert cfg.arch == "FPN" and cfg.decoder_width == 16 and cfg.epochs == 3 and cfg.resume == ""
    with pytest.raises(ParamsError, match=r"distill\.student\.epochz: unknown key"):
        student_params(TINY, DistillParams(student={"epochz": 1}))


@pytest.fixture
def blob_cache(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        images = rng.integers(0, 60, (n, SIZE, SIZE, 3), dtype=np.uint8)
        labels = np.zeros((n, SIZE, SIZE), np.uint8)
        for i in range(n):
            cy, cx, r = rng.integers(24, 40, size=3)
            face = ((yy - cy) / (r / 2)) ** 2 + ((xx - cx) / (0.4 * r)) ** 2 < 1
            labels[i][face], images[i][face] = 7, (200, 160, 140)
        np.save(tmp_path / f"{split}_images.npy", images)
        np.save(tmp_path / f"{split}_labels.npy", labels)
        np.save(tmp_path / f"{split}_landmarks.npy", np.full((n, 68, 2), np.nan, np.float32))
        pd.DataFrame({"row": range(n), "id": range(n), "source": "blobs"}).to_csv(tmp_path / f"{split}_ids.csv",
                                                                                   index=False)
    return tmp_path


def test_fit_student_trains_the_student_architecture(blob_cache):
    teacher = tiny_model()
    parser = {**TINY, "epochs": 1, "batch_size": 4, "threads": 1, "augment": {}}
    distill = DistillParams(temperature=2.0, weight=0.5, student={"arch": "FPN", "decoder_width": 32})
    run = fit_student(parser, distill, "ce", blob_cache, None, teacher)
    assert type(run.model).__name__ == "FPN"
    assert np.isfinite(run.history[0]["train_loss"])


def test_interleaved_latency_counts_every_run():
    calls = {"a": 0, "b": 0}

    def runner(name):
        def run():
            calls[name] += 1
        return run
    timings = interleaved_latency_ms({"a": runner("a"), "b": runner("b")}, runs=7, rounds=3, warmup=2)
    assert calls == {"a": 9, "b": 9}
    assert timings["a"]["runs"] == 7 and timings["a"]["p90_ms"] >= timings["a"]["median_ms"] >= 0


def test_pareto_front():
    assert pareto_front([(1, 0.5), (2, 0.8), (3, 0.7), (2, 0.5)]) == [True, True, False, False]


def test_latency_table_times_every_variant_beside_the_reference(blob_cache, exported, tmp_path):
    model, root = exported
    save_checkpoint(tmp_path / "m.pt", {"state_dict": model.state_dict(), "config": TINY, "input_size": SIZE})
    table = latency_table({"tiny": ExportedModel(tmp_path / "m.pt", root / "m.onnx", root / "m_int8.onnx")},
                          CachedSplit(blob_cache, "test"), threads=(1, 2), runs=3)
    assert table["reference"]["threads_2"]["ratio_to_reference"] == pytest.approx(1)
    rows = table_rows(table)
    assert {(r["variant"], r["threads"]) for r in rows} == {(v, t) for v in ("torch_fp32", "ort_fp32", "ort_int8")
                                                            for t in (1, 2)}
    assert all(r["median_ms"] > 0 and r["flops"] > 0 and r["file_mb"] > 0 for r in rows)
    by_variant = {r["variant"]: r for r in rows if r["threads"] == 2}
    assert by_variant["torch_fp32"]["test_f1_fg"] == pytest.approx(by_variant["ort_fp32"]["test_f1_fg"], abs=1e-3)
    assert len(table_rows(table, threads=1)) == 3
    json.dumps(table)  # plain data, for metrics/latency.json


def test_predict_labels_onnx_batches(exported):
    _, root = exported
    session = ort_session(root / "m.onnx", 1)
    images = photos(5, 6)
    together = predict_labels_onnx(session, images, batch_size=5)
    assert np.array_equal(predict_labels_onnx(session, images, batch_size=2), together)
