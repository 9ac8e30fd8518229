# Shortcuts for maintainers and instructors; each target goes through tasks.py, which sets up .venv first.
PY ?= python3

.PHONY: setup book test lint bench clean release collect autograde feedback grades bench-autograde
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

# The instructor's workflow for the graded assignments (book/instructors.md); all of it is
# `python -m coursegrader ...` in .venv. GRADEBOOK=postgresql://... uses another gradebook than gradebook.db.
VPY = .venv/bin/python
JOBS ?= 2
INBOX ?= inbox
GRADING = $(VPY) -m coursegrader $(if $(GRADEBOOK),--db-url $(GRADEBOOK))
release: setup
	$(GRADING) release
collect: setup
	$(GRADING) collect $(INBOX)
autograde: setup
	$(GRADING) autograde --jobs $(JOBS)
feedback: setup
	$(GRADING) feedback
grades: setup
	$(GRADING) export --to grades.csv
bench-autograde: setup
	$(VPY) bench/autograde.py --jobs $(JOBS)
