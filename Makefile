# One-command set-up and the project's main jobs. Every target creates .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
DEMO_STEPS ?= 1500
DEMO_OUT ?= outputs/demo
DEMO_ARGS ?=
PYTEST_ARGS ?=
APP_ARGS ?= --tiny

export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: setup test demo app bench lint clean-venv

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q -e ".[test]"
	@touch $@

# gradio (the web demo, app.py) pins pillow<13, so it is an extra: only `make test` and `make app` install it.
$(VENV)/.installed-demo: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,demo]"
	@touch $@

setup: $(VENV)/.installed

test: setup $(VENV)/.installed-demo
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q $(PYTEST_ARGS)

demo: setup
	HF_HUB_OFFLINE=1 $(PY) scripts/demo.py --steps $(DEMO_STEPS) --out $(DEMO_OUT) $(DEMO_ARGS)

app: $(VENV)/.installed-demo
	HF_HUB_OFFLINE=1 $(PY) app.py $(APP_ARGS)

bench: setup
	@set -e; for f in benchmarks/bench_*.py; do echo "== $$f"; HF_HUB_OFFLINE=1 $(PY) $$f; done

lint: setup
	$(PY) -m pip install -q -e ".[lint]"
	$(PY) -m ruff check .

clean-venv:
	rm -rf $(VENV)
