# Two entry points, each self-contained on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(PY) notebooks/run_demo.py notebooks/01-remote-process.ipynb
	$(PY) notebooks/run_demo.py notebooks/02-s3batch.ipynb

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check jupyter_remote tests bench notebooks/run_demo.py
	$(VENV)/bin/ruff format --check jupyter_remote tests bench notebooks/run_demo.py

test: $(VENV)/.installed lint
	$(PY) -m pytest -p no:cacheprovider

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info
