# vitstab: `make sweep` runs the embedded-default stability study, `make test` the suite.
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: install test sweep bench bench-gpu analysis example notebook docs docs-serve lint clean

# `make sweep` is `python -m sweep.run`: the default study lives in conf/ (conf/run.yaml and
# the preset the models ask for, conf/preset/). These variables only pass overrides through.
SWEEP_ARGS = $(if $(SWEEP),sweep=$(SWEEP)) $(if $(DATA),data=$(DATA)) \
	$(if $(MODEL),'sweep.models=[$(MODEL)]') $(if $(OPTIMIZER),'sweep.optimizers=[$(OPTIMIZER)]') \
	$(if $(N),sweep.n=$(N)) $(if $(EPOCHS),schedule.epochs=$(EPOCHS)) \
	$(if $(PRESET),preset=$(PRESET)) $(if $(DRY_RUN),dry_run=true) $(ARGS)

install: $(STAMP)

# torch is installed first and pinned so no dependency can pull the CUDA build.
$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

sweep: $(STAMP)
	$(PY) -m sweep.run $(SWEEP_ARGS)

# The small real results folder the notebook opens by default (committed, minus ray/).
example: $(STAMP)
	$(MAKE) sweep ARGS=sweep.name=example

# Two pytest workers (pytest-xdist): the Ray sweeps spend much of their time waiting (on
# start-up, on the trials they poll), so two share two cores well; an idle worker steals
# queued tests from the other, so neither ends alone on a long sweep. TEST_WORKERS=0 runs
# in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist worksteal

# Speed figures for docs/speed.md: each prints a ratio against a baseline measured in the same run.
bench: $(STAMP)
	$(PY) bench/bench_cpu.py
	$(PY) bench/bench_data.py
	$(PY) bench/bench_jpeg.py
	$(PY) bench/bench_sweep.py
	$(PY) bench/bench_analysis.py

# GPU throughput/MFU and GPU trial checks (needs a CUDA torch; prints one line without CUDA).
bench-gpu: $(STAMP)
	$(PY) bench/bench_gpu.py

# EDFs, stability tables and report.html for every sweep under RESULTS (in the venv, which
# has pandas/scipy/seaborn); ANALYSIS_ARGS passes options, e.g. --compare or --where 'lr<1'.
RESULTS ?= results
analysis: $(STAMP)
	$(PY) -m analysis $(RESULTS) $(ANALYSIS_ARGS)

# JupyterLab on notebooks/ (stability.ipynb walks through a results folder); NOBROWSER=1
# for a remote or headless machine, LAB_ARGS for anything else (e.g. --port=8890, or
# --allow-root in a container running as root).
JUPYTER ?= .venv/bin/jupyter
notebook: $(STAMP)
	$(JUPYTER) lab notebooks/ $(if $(NOBROWSER),--no-browser) $(LAB_ARGS)

# The documentation site (mkdocs.yml): docs/, each study's results/<study>/README.md and the
# configuration reference generated from the schemas. --strict: a broken link fails.
# docs-serve rebuilds on every change; DOCS_PORT picks the port.
DOCS_PORT ?= 8000
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs serve --strict -a 127.0.0.1:$(DOCS_PORT)

lint: $(STAMP)
	.venv/bin/ruff check .

clean:
	rm -rf .venv *.egg-info .pytest_cache site
