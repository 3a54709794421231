# Two commands do all the set-up on a fresh machine:
#   make demo   the main job: build the demo corpus, train, index it, open the app
#   make test   install everything the tests need and run the whole suite
# and, while working: make test-fast (the quick lane: no slow, browser or PostgreSQL tests)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast install bench-encoders bench-retrieval clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU build of torch that ships on these machines; any other request downloads gigabytes
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,video]'
	# numba compiles UMAP's kernels once here and caches them, not during the demo's first map
	$(PY) -c "from encoder.evaluation.plots import compile_map_kernels; compile_map_kernels()"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/posestyle demo

test: $(STAMP)
	bash tests/support/install_system_deps.sh
	$(PY) -m pytest tests -q

test-fast: $(STAMP)
	$(PY) -m pytest tests -q -m "not slow and not browser and not postgres"

bench-encoders: $(STAMP)
	$(VENV)/bin/posestyle bench encoders

bench-retrieval: $(STAMP)
	$(VENV)/bin/posestyle bench retrieval

clean:
	rm -rf $(VENV) index_data/demo index_data/models index_data/indexes index_data/cache index_data/metadata.db*
