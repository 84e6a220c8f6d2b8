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

# The main job on the built-in default data: generate the synthetic market, summarise it, compute
# its features and prove the engine on it (stream == batch, prefix, warm-up, save/restore), train
# a quick TFA model, verify its artifact and prove both inference paths equal on every bar.
demo: $(STAMP)
	rm -rf demo/tfa demo/tfa.ckpt
	$(VENV)/bin/sentio data synth --out demo/market --seed 7
	$(VENV)/bin/sentio data info demo/market/QQQ.parquet demo/market/TQQQ.parquet
	$(VENV)/bin/sentio features compute --spec intraday_default \
	  --data demo/market/QQQ.parquet --out demo/features/QQQ.parquet
	$(VENV)/bin/sentio features check --spec feature_spec_55_minimal --data demo/market/QQQ.parquet
	$(VENV)/bin/sentio train --quick --output demo/tfa
	$(VENV)/bin/sentio model verify demo/tfa
	$(VENV)/bin/sentio model parity demo/tfa --data demo/market/QQQ.parquet

test: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(PY) bench/import.py
	$(PY) bench/features.py
	$(PY) bench/train.py

# Re-fit the shipped synthetic-market parameters from the real QQQ files (needs ../shared/data).
calibrate: $(STAMP)
	$(VENV)/bin/sentio data calibrate \
	  ../shared/data/ibkr/QQQ_1min.csv \
	  ../shared/data/polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv \
	  ../shared/data/lse/QQQ_1min.parquet \
	  --volume-level-from ../shared/data/polygon/QQQ_RTH_NH_2025-08-08_2025-09-12.csv \
	  --out src/sentio/data/synth/calibration.json

clean:
	rm -rf $(VENV) demo .pytest_cache
