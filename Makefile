# `make demo` and `make test` work on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench calibrate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the built-in default data: generate the synthetic market, summarise it, train
# a quick TFA model, verify its artifact, backtest it out of sample (`strattest --blocks 5`) with
# the audit on, verify the audit by replay and show the newest ten bars of its signal flow.
# It installs only what the job needs (the train extra), so it fits in 5 minutes from a fresh
# clone; `make test` adds the dev tools.
DEMO_STAMP := $(VENV)/.installed-demo

$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train]'
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	rm -rf demo/tfa demo/tfa.ckpt demo/audit.db demo/audit.db-wal demo/audit.db-shm
	$(VENV)/bin/sentio data synth --out demo/market --seed 7
	$(VENV)/bin/sentio data info demo/market/QQQ.parquet demo/market/TQQQ.parquet
	$(VENV)/bin/sentio train --quick --output demo/tfa
	$(VENV)/bin/sentio model verify demo/tfa
	$(VENV)/bin/sentio strattest tfa --model demo/tfa --blocks 5 --audit demo/audit.db
	$(VENV)/bin/saudit verify --db demo/audit.db
	$(VENV)/bin/saudit signal-flow --db demo/audit.db --max 10

test: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(PY) bench/import.py
	$(PY) bench/features.py
	$(PY) bench/train.py
	$(PY) bench/backtest.py
	$(PY) bench/audit.py

# Re-fit the shipped synthetic-market parameters from the real QQQ files (needs ../shared/data).
calibrate: $(STAMP)
	$(VENV)/bin/sentio data calibrate \
	  ../shared/data/ibkr/QQQ_1min.csv \
	  ../shared/data/polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv \
	  ../shared/data/lse/QQQ_1min.parquet \
	  --volume-level-from ../shared/data/polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv \
	  --out src/sentio/data/synth/calibration.json

clean:
	rm -rf $(VENV) demo .pytest_cache .sentio-cache
