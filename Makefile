# One command sets everything up and runs the main job; another sets up and runs the tests.
#   make run    create .venv if needed, install, run the main job on its embedded default
#   make test   same set-up, then lint and the whole test suite (what CI runs)
# Set-up is idempotent: the install step reruns only when a requirements file changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean mlflow-start mlflow-stop ray-up ray-down submit-baselines submit-sweep

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)
	@$(PY) -c "from core.nb101.native import build; import sys; sys.exit(build() is None)" \
		|| echo "warning: no C compiler, NB-101 hashing falls back to plain Python (slow)"

run: setup mlflow-start
	$(PY) jobs/nb101_sweep.py

# The MLflow tracking server (SQLite + local artifacts, 127.0.0.1:5000); reused when running.
mlflow-start: setup
	$(PY) -m mlflow_server start

mlflow-stop:
	$(PY) -m mlflow_server stop

# A local Ray cluster for `ray job submit` (bound to 127.0.0.1), and a submission through it.
ray-up: setup
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/ray start --head --node-ip-address 127.0.0.1 \
		--dashboard-host 127.0.0.1 --disable-usage-stats

ray-down:
	$(VENV)/bin/ray stop

submit-baselines: setup mlflow-start
	RAY_AUTH_MODE=token $(VENV)/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/nb101_baselines.py $(ARGS)

submit-sweep: setup mlflow-start
	RAY_AUTH_MODE=token $(VENV)/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/nb101_sweep.py $(ARGS)

lint: setup
	$(PY) -m ruff check .

# PYTHONFAULTHANDLER: a crash in native code prints every thread's Python stack, not only a signal name
test: setup lint
	PYTHONFAULTHANDLER=1 $(PY) -m pytest

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .cache outputs .pytest_cache .ruff_cache core/nb101/_native.so
