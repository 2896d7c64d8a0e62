# Two entry points for a fresh machine: `make demo` and `make test`.
# Each sets up a local virtual environment in $(VENV) first.
PYTHON ?= python3
VENV ?= .venv
# The CPU build that lies on the build machines' disk; a bare `torch` pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.s4s-installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,zoo]"
	# k-diffusion's real wrappers for the ComfyUI tests; its declared dependencies (wandb, clip,
	# torchvision, a newer CUDA torch, ...) serve its training code, not the wrappers
	$(PY) -m pip install --quiet -c constraints.txt --no-deps k-diffusion
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/s4s demo --out docs --force

test: $(STAMP)
	$(PY) -m pytest tests

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
