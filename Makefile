# Two commands set everything up on a fresh machine:
#   make analyze   virtual environment + dependencies + MedNIST + GPU, CPU and comparison analyses
#   make test      virtual environment + dependencies + the test suite
# Variables: PYTHON (interpreter for the venv), VENV, TORCH_SPEC, MEDNIST_ARCHIVE, ARGS (extra analysis flags)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned on its own so pip never swaps a working build; on Linux PyPI serves a CUDA build
TORCH_SPEC ?= torch==2.13.0
# opt-in: a local MedNIST archive tried when the official download is unreachable (hospital networks);
# empty by default, then the real subset shipped in embedded/ is used before any synthetic set
MEDNIST_ARCHIVE ?=
DATA_DIR ?= data
ARGS ?=

.PHONY: analyze quick test venv data gpu cpu compare lint clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# verified data already there (any source): keep it; else the official download; without
# network the local archive named by MEDNIST_ARCHIVE (if given), then the real 360-image subset
# shipped in embedded/ (labelled "embedded subset"); without any of them a labelled synthetic set
data: venv
	@$(PY) -c "import sys; from common.data.mednist import is_verified; sys.exit(0 if is_verified('$(DATA_DIR)') else 1)" \
	 && echo "using the verified MedNIST in $(DATA_DIR)/ ($$($(PY) -c "import json; m = json.load(open('$(DATA_DIR)/MedNIST/manifest.json')); print(m['source'], m['total'], 'images')"))" \
	 || $(PY) download_mednist.py --data-dir $(DATA_DIR) \
	 || ( test -n "$(MEDNIST_ARCHIVE)" && test -f "$(MEDNIST_ARCHIVE)" && echo "falling back to $(MEDNIST_ARCHIVE)" \
	      && $(PY) download_mednist.py --data-dir $(DATA_DIR) --from-archive "$(MEDNIST_ARCHIVE)" ) \
	 || ( echo "falling back to the real MedNIST subset shipped in embedded/ (360 images, labelled as a subset)" \
	      && $(PY) download_mednist.py --data-dir $(DATA_DIR) --from-embedded ) \
	 || ( echo "falling back to a SYNTHETIC MedNIST-shaped set (labelled as such everywhere)" \
	      && $(PY) download_mednist.py --data-dir $(DATA_DIR) --synthetic )

gpu: data
	$(PY) comprehensive_gpu_analysis.py --data-dir $(DATA_DIR) $(ARGS)

cpu: data
	$(PY) comprehensive_cpu_analysis.py --data-dir $(DATA_DIR) $(ARGS)

compare: venv
	$(PY) enhanced_gpu_cpu_comparison.py

analyze: data
	$(PY) comprehensive_gpu_analysis.py --data-dir $(DATA_DIR) $(ARGS)
	$(PY) comprehensive_cpu_analysis.py --data-dir $(DATA_DIR) $(ARGS)
	$(PY) enhanced_gpu_cpu_comparison.py

quick:
	$(MAKE) analyze ARGS="--quick $(ARGS)"

test: venv
	$(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check .

clean:
	rm -rf comprehensive_gpu_cpu_analysis_results .pytest_cache
