# `make repro` and `make test` create the virtual environment first when it is missing or stale.
VENV ?= .venv
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export NO_ALBUMENTATIONS_UPDATE := 1
export DVC_NO_ANALYTICS := 1

.PHONY: repro test lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
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
