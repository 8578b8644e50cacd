# vitstab: `make sweep` runs the embedded-default stability study, `make test` the suite.
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: install test sweep bench lint clean

install: $(STAMP)

# torch is installed first and pinned so no dependency can pull the CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# Speed figures for the README: each prints a ratio against a baseline measured in the same run.
bench: $(STAMP)
	$(PY) bench/bench_models.py

lint: $(STAMP)
	.venv/bin/ruff check .

clean:
	rm -rf .venv *.egg-info .pytest_cache
