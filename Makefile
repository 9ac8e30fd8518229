# The instructor's grading workflow; the other jobs (book, test, lint, bench) are `python3 tasks.py <job>`.
PY ?= python3

.PHONY: setup clean release collect autograde feedback grades bench-autograde
# An instructor's set-up: the grader and its sandbox (bubblewrap); no Node.js, no browser.
setup:
	$(PY) tasks.py setup instructor
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
