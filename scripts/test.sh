#!/usr/bin/env bash
# Lint and test tradeops. Needs the services from scripts/services.sh up.
# Usage: bash scripts/test.sh [PYTEST_ARGS...]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -f .venv/bin/activate ]]; then
	# shellcheck disable=SC1091
	source .venv/bin/activate
fi

# The runtime role (what the application connects as) and the owner (creates and migrates the
# test database, empties it after transactional tests): docs/security.md.
export DATABASE_URL="${DATABASE_URL:-postgres://tradeops:tradeops@127.0.0.1:5432/tradeops}"
export MIGRATE_DATABASE_URL="${MIGRATE_DATABASE_URL:-postgres://tradeops_owner:tradeops_owner@127.0.0.1:5432/tradeops}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"

echo "== ruff check"
ruff check .
echo "== ruff format --check"
ruff format --check .

# The architecture's dependency rules (.importlinter: layers, pure handlers), the deployment
# checklist on the production settings (placeholder secrets, never used to serve), and no model
# change without its migration: docs/checks.md.
echo "== lint-imports"
lint-imports --no-cache
# AUDIT_CHECKPOINT_DATABASE is pinned here: tradeops.audit.W001 compares DATABASE_URL with the
# checkpoints this machine happens to hold (a cluster run's, on another port), which are not the
# settings under check (tests/tradeops/audit/test_checks.py tests it).
echo "== manage.py check --deploy (production settings)"
DJANGO_SETTINGS_MODULE=tradeops.settings.production \
	SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	ALLOWED_HOSTS=tradeops.invalid AUDIT_CHECKPOINT_KEY=check-deploy-placeholder \
	AUDIT_CHECKPOINT_DATABASE=check-deploy-placeholder \
	python manage.py check --deploy --fail-level WARNING
echo "== manage.py makemigrations --check --dry-run"
python manage.py makemigrations --check --dry-run

echo "== pytest $*"
rc=0
python -m pytest "$@" || rc=$?
if [[ $rc -eq 5 ]]; then
	echo "scripts/test.sh: pytest collected no tests (exit code 5); treating that as a failure" >&2
	exit 1
fi
if [[ $rc -ne 0 ]]; then
	echo "scripts/test.sh: pytest failed (exit code $rc)" >&2
fi
exit "$rc"
