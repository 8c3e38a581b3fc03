# facelab — two entry points, each creating its own virtual environment when missing.
#   make demo   set up, then run `facelab demo` on the built-in synthetic model and
#               `facelab fit` on the astronaut sample photo
#   make test   set up (with test tools), then run the whole test suite, notebooks included
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= facelab-demo

.PHONY: demo test setup setup-dev lint lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# torch is installed first, pinned, so nothing later can pull a CUDA build. The Numba kernels
# are compiled into their on-disk cache here (facelab.warmup), not in the user's first call.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install -e ".[dev,landmarks,video]"
	touch $@

# Compiled again whenever a kernel source changes (an edit, a pull): Numba's cache is keyed by
# each source file's timestamp, so a changed file would otherwise compile in the first call.
KERNELS := $(wildcard facelab/*/cpu.py)
$(VENV)/.warm: $(VENV)/.installed $(KERNELS)
	$(BIN)/python -m facelab.warmup
	touch $@

$(VENV)/.warm-dev: $(VENV)/.installed-dev $(KERNELS)
	$(BIN)/python -m facelab.warmup --float64
	touch $@

setup: $(VENV)/.warm
setup-dev: $(VENV)/.warm-dev

demo: setup
	$(BIN)/facelab demo --out $(OUT) --force
	$(BIN)/facelab fit --sample astronaut -o $(OUT)/fit --force
	@echo ""
	@echo "Open the notebooks with:  $(BIN)/jupyter lab notebooks/"

# Two passes: everything but the browser tests in the 2-worker pool, then the browser tests
# alone (they drive JupyterLab + Chromium and must not compete with the pool for 2 cores).
test: setup-dev
	$(BIN)/python -m pytest -n 2 --dist loadscope --nbval-lax --nbval-current-env -m "not browser" tests notebooks
	$(BIN)/python -m pytest -p no:xdist -m browser tests/browser

lint: setup-dev
	$(BIN)/ruff check facelab tests benchmarks

lab: setup
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
