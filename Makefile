# The two commands of the README:  make demo  and  make test
PYTHON ?= python3
RUNS ?= runs
export PYTHONHASHSEED = 0

.PHONY: demo test test-slow test-browser lint setup bench

setup:
	@bash scripts/setup.sh

demo: setup  ## train the default zoo models if missing, audit them, open the dashboard
	$(PYTHON) -m deepscope demo --runs $(RUNS)

test: setup lint  ## the default test run (CI): lint, then the tests; < 15 min on 2 cores
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q

test-slow: setup  ## full-size training and other slow tests
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -m slow

lint: setup  ## ruff over everything, mypy over explain/ zoo/ deepscope/ dashboard/ (pyproject's [tool.mypy])
	$(PYTHON) -m ruff check explain zoo dashboard deepscope tests benchmarks
	$(PYTHON) -m mypy
