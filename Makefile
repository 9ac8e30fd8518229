# Shortcuts for maintainers and instructors; each target goes through tasks.py, which sets up .venv first.
PY ?= python3

.PHONY: setup book test lint bench clean
setup:
	$(PY) tasks.py setup
book:
	$(PY) tasks.py book
test:
	$(PY) tasks.py test
lint:
	$(PY) tasks.py lint
bench:
	$(PY) tasks.py bench
clean:
	rm -rf _build .pytest_cache .ruff_cache
