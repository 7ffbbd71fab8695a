# reprobook: `make book` builds the book, `make test` runs the tests (both set up .venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= small
CHAPTER ?= all
export REPRO_DATA ?= $(abspath ../shared/data)

.PHONY: venv book test chapter bench check-results commit-results clean

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==26.3
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/.installed

book: venv
	$(BIN)/python -m reprobook.cli book --profile $(PROFILE)

chapter: venv
	$(BIN)/python -m reprobook.cli run $(CHAPTER) --profile $(PROFILE) $(if $(RERUN_STALE),--rerun-stale)

# unit tests; the floating-point ones again under other CPU kernels and one thread; then nbval
# executes every chapter from scratch at `small` (committed evidence off, an empty results root)
NBVAL_RESULTS := $(abspath _build/nbval-results)
test: venv
	$(BIN)/python -m jupytext --quiet --update --to ipynb notebooks/*.py book/intro.py book/summary.py book/status.py
	REPRO_QUIET=1 $(BIN)/python -m pytest -q tests
	@echo "numerics under ATEN_CPU_CAPABILITY=default"
	ATEN_CPU_CAPABILITY=default REPRO_QUIET=1 $(BIN)/python -m pytest -q -m numerics tests
	@echo "numerics under ATEN_CPU_CAPABILITY=avx2 (MKL and oneDNN held to AVX2 too)"
	ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 REPRO_QUIET=1 \
	  $(BIN)/python -m pytest -q -m numerics tests
	@echo "numerics with one thread"
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 REPRO_QUIET=1 $(BIN)/python -m pytest -q -m numerics tests
	rm -rf $(NBVAL_RESULTS)
	REPRO_QUIET=1 REPRO_EVIDENCE=none REPRO_RESULTS=$(NBVAL_RESULTS) $(BIN)/python -m pytest -q \
	  --nbval-lax --junitxml=_build/nbval.xml notebooks book/intro.ipynb book/summary.ipynb book/status.ipynb
	$(BIN)/python tools/nbval_times.py _build/nbval.xml

bench: venv
	cd benchmarks && ../$(BIN)/python bench_train.py
	$(BIN)/python benchmarks/bench_gsc.py
	$(BIN)/python benchmarks/bench_htsr.py
	$(BIN)/python benchmarks/bench_dropmax.py

check-results: venv
	$(BIN)/python -m reprobook.cli check-results

# copy the records of `make chapter CHAPTER=... PROFILE=medium` into results/ (then git add them)
commit-results: venv
	$(BIN)/python -m reprobook.cli commit-results $(CHAPTER) --profile $(PROFILE)

clean:
	rm -rf _build
