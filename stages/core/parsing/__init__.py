"""The face parser: training loop, losses, scoring, metrics, distillation, ONNX export, quantisation, latency, benchmark."""
