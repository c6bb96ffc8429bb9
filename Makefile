# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.genrad-installed
# frd-score and pyradiomics open their UTF-8 YAML configs with the locale encoding (ASCII on bare CI images).
export PYTHONUTF8 := 1

.PHONY: install demo lint test test-slow benchmarks clean

install: $(STAMP)

# torch first (a CPU build lies on disk; an unpinned torch would pull a multi-GB CUDA build),
# then pyradiomics 3.0.1, which has no wheel for this Python and must build without isolation.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet numpy versioneer setuptools wheel
	$(PIP) install --quiet --no-build-isolation pyradiomics==3.0.1
	$(PIP) install --quiet -e ".[dev,all]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/genrad demo --out demo_out

# ruff and mypy read their settings from pyproject.toml
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q -p no:cacheprovider

test-slow: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -m slow

clean:
	rm -rf $(VENV) demo_out .pytest_cache
