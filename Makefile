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

.PHONY: demo test setup bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
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
