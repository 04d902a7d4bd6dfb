# Two commands for a fresh machine:  make reproduce  |  make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: venv test test-fast reproduce data clean

# torch first, pinned (a looser spec pulls gigabytes of CUDA): this machine's pip finds the CPU wheel of
# 2.13.0 locally; elsewhere PyPI serves the CUDA build, and TORCH_INDEX=cpu takes the CPU one from
# download.pytorch.org. Then the package, at the tested versions (constraints.txt).
TORCH_INDEX ?=
$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url https://download.pytorch.org/whl/$(TORCH_INDEX))
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev,serve]"
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# The table notebooks keep their outputs in git: nbval re-executes them and compares the cells marked
# NBVAL_CHECK_OUTPUT (the paper's tables, regenerated from tinyrs/report/paper_numbers.json).
TABLE_NOTEBOOKS := $(wildcard notebooks/09_*.ipynb notebooks/1[0-4]_*.ipynb)

test: venv
	$(BIN)/python -m pytest tests $(TABLE_NOTEBOOKS) --nbval-lax --sanitize-with notebooks/nbval_sanitize.cfg

test-fast: venv
	$(BIN)/python -m pytest -m "not slow"

reproduce: venv
	$(BIN)/tinyrs reproduce --profile toy

data: venv
	$(BIN)/tinyrs data build --profile toy --cards-dir data_cards

clean:
	rm -rf $(VENV) data runs
