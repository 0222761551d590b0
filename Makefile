# The two commands of the README, plus the install step they share.
.PHONY: run test install lint

run: install
	.venv/bin/python scripts/up.py

test: install
	bash scripts/ensure_chromium.sh
	.venv/bin/python scripts/run_tests.py

install:
	bash scripts/install.sh

lint:
	.venv/bin/ruff check .
