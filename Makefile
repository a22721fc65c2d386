# Two commands do everything on a fresh machine (each sets itself up first):
#   make demo   - the main job: `softmaxkit demo` on bundled data, no network
#   make test   - the whole test suite
# The virtual environment lives in .venv; torch is pinned (constraints.txt) to
# the CPU build cached on the build machines.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
# Where torch comes from: empty uses pip's own configuration (the build machines' local wheel
# cache holds the CPU build); https://download.pytorch.org/whl/cpu gets the CPU build from PyPI-land.
PIP_TORCH_INDEX ?=

.PHONY: demo test setup bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt $(if $(PIP_TORCH_INDEX),--index-url $(PIP_TORCH_INDEX)) torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[all,test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/softmaxkit demo

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/softmaxkit bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis softmaxkit-demo
