# One command sets everything up and runs the main job; another sets up and runs the tests.
#   make run    create .venv if needed, install, run the main job on its embedded default
#   make test   same set-up, then lint and the whole test suite (what CI runs)
# Set-up is idempotent: the install step reruns only when a requirements file changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean mlflow-start mlflow-stop ray-up ray-down submit-baselines submit-sweep wheel

$(PY):
	$(PYTHON) -m venv $(VENV)

# Bytecode: pip would compile all ~20,000 modules of the environment (a minute of set-up) where
# the project imports ~6,000. It installs without compiling; set-up compiles what the project's
# packages import, and the rest is compiled on first import: make's commands write bytecode even
# where PYTHONDONTWRITEBYTECODE is set (without it, every Ray worker would compile torch anew).
unexport PYTHONDONTWRITEBYTECODE
PACKAGES := cluster core jobs nasbench search stats mlflow_server
# every module of those packages, imported (a __main__ is a command: not run)
IMPORT_ALL := import importlib, pathlib; [importlib.import_module(".".join(f.with_suffix("").parts) \
	.removesuffix(".__init__")) for p in "$(PACKAGES)".split() for f in sorted(pathlib.Path(p).rglob("*.py")) \
	if f.stem != "__main__"]

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml setup.py | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q --no-compile -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-compile --no-deps --no-build-isolation -e .
	$(PY) -c '$(IMPORT_ALL)'
	touch $(STAMP)

setup: $(STAMP)
	@$(PY) -c "from core.nb101.native import build; import sys; sys.exit(build() is None)" \
		|| echo "warning: no C compiler, NB-101 hashing falls back to plain Python (slow)"

run: setup mlflow-start
	$(PY) jobs/nb101_sweep.py

# The MLflow tracking server (SQLite + local artifacts, 127.0.0.1:5000); reused when running.
# MLFLOW_ARGS: more flags, e.g. "--host 0.0.0.0 --admin-password-file ~/.mlflow-admin" (basic auth).
mlflow-start: setup
	$(PY) -m mlflow_server start $(MLFLOW_ARGS)

mlflow-stop:
	$(PY) -m mlflow_server stop

# A local Ray cluster for `ray job submit`, and a submission through it. Every port it opens is on
# 127.0.0.1: RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 stops Ray replacing 127.0.0.1 by the interface
# address (and no other node can join). Token authentication: a token is made, readable by its
# owner only, when there is none (~/.ray/auth_token). RAY_ARGS: more `ray start` flags.
ray-up: setup
	umask 077 && $(VENV)/bin/ray get-auth-token --generate >/dev/null
	PATH=$(abspath $(VENV))/bin:$$PATH RAY_AUTH_MODE=token RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 \
		$(VENV)/bin/ray start --head --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 \
		--disable-usage-stats $(RAY_ARGS)

ray-down:
	$(VENV)/bin/ray stop

submit-baselines: setup mlflow-start
	RAY_AUTH_MODE=token $(VENV)/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/nb101_baselines.py $(ARGS)

submit-sweep: setup mlflow-start
	RAY_AUTH_MODE=token $(VENV)/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- python jobs/nb101_sweep.py $(ARGS)

# What every node of a cluster installs (docs/deployment.md): the wheel, with the NB-101 kernel
# compiled into it, and the pinned requirements beside it.
wheel: setup
	rm -rf dist && $(PY) -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation -w dist .
	cp requirements.txt dist/

lint: setup
	$(PY) -m ruff check .

# PYTHONFAULTHANDLER: a crash in native code prints every thread's Python stack, not only a signal name.
# Two workers: one runs the tests that start Ray clusters, servers and jobs, in order; the other the
# in-process tests, under SCHED_IDLE in the CPU time the first leaves idle (tests/conftest.py).
# A plain `python -m pytest` runs them all in one process.
test: setup lint
	PYTHONFAULTHANDLER=1 $(PY) -m pytest -n 2

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf .cache outputs .pytest_cache .ruff_cache build dist core/nb101/_native.so core/nb101/_wlhash.*.so
