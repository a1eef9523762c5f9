# One-command setup: every target creates or updates .venv itself, then runs.
#   make demo   - the main job on the built-in synthetic dataset
#   make test   - the default test suite
#   make reports - the paper's tables and figures (trains what is missing; ~1.5 h on 2 cores)
#   make bench  - benchmarks that print our figures against a peer measured in the same run
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= runs/demo
# when make was called (expanded once, at parse time): demo.md counts the setup too
STARTED := $(shell date +%s)

.PHONY: demo test test-env test-all bench reports lint venv lava-env clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fsve needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,video]"
	touch $(STAMP)

# Optional Lava environment (issue 7): Python 3.10 with lava-nc, never mixed into .venv.
# PYTHON310: the first python3.10 that runs (pyenv shims may exist but refuse to run).
# Built once (stamp file); after changing LAVA_REQS: rm $(LAVA_STAMP) && make lava-env.
PYTHON310 ?= $(shell for p in $$(command -v python3.10) $$(ls -d $$(pyenv root 2>/dev/null)/versions/3.10*/bin/python3.10 2>/dev/null); do $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && { echo $$p; break; }; done)
LAVA_VENV := .venv-lava
LAVA_STAMP := $(LAVA_VENV)/.installed
LAVA_REQS := lava-nc==0.10.0 "numpy<2" h5py

lava-env: $(LAVA_STAMP)

$(LAVA_STAMP):
	@test -n "$(PYTHON310)" || { echo "lava-env needs Python 3.10 (set PYTHON310=/path/to/python3.10)"; exit 1; }
	test -x $(LAVA_VENV)/bin/python || $(PYTHON310) -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LAVA_VENV)/bin/python -m pip install --quiet $(LAVA_REQS)
	touch $(LAVA_STAMP)

demo: $(STAMP)
	$(PY) -m apps.demo --out $(DEMO_DIR) --started-at $(STARTED)

# Trains (or resumes) every run it needs under runs/reports, two at a time, one thread each,
# then writes reports/summary.md and the CSV/PNG behind each table and figure.
reports: $(STAMP)
	$(PY) -m apps.reports

# The test environment adds the SNN frameworks the energy and export tests profile and compile
# (snnTorch, Norse, Sinabs) and NeuroBench, the tests' external oracle. Sinabs 3.1.3 pins
# nir<=1.0.4 for its own NIR bridge, which we do not use: installed without dependencies.
TEST_STAMP := $(VENV)/.installed-test

test-env: $(TEST_STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[dev,video,frameworks]"
	$(PY) -m pip install --quiet --no-deps "sinabs==3.1.3"
	touch $(TEST_STAMP)

test: $(TEST_STAMP)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -m "not slow"

test-all: $(TEST_STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_lif.py
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_energy.py
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_sim.py
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_loihi.py  # Lava half skipped without make lava-env

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
