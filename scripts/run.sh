#!/usr/bin/env bash
# The embedded run: SQLite, in-memory bus, paper broker. Installs into .venv on first use,
# migrates, seeds (passwords are printed once), trains the models once, then replays real market
# data through the whole pipeline while serving the dashboard on http://127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "import django, confluent_kafka, sklearn" 2>/dev/null || [ requirements/base.txt -nt .venv/.installed ]; then
  pip install -q --disable-pip-version-check -r requirements/base.txt
  touch .venv/.installed
fi

unset DATABASE_URL EVENT_BUS BROKER
export DJANGO_SETTINGS_MODULE=tradeops.settings.local
# The paper broker's own book survives restarts, so the worker reconciles against it.
export EXECUTION_PAPER_JOURNAL_DIR="${EXECUTION_PAPER_JOURNAL_DIR:-var/paper-journal}"
python manage.py migrate --noinput -v 0
python manage.py seed
# The first run trains both models on the real EURUSD bars (about half a minute) and activates them.
if ! python manage.py shell -c "from mlmodels.models import ModelVersion; import sys; sys.exit(0 if ModelVersion.objects.filter(is_active=True).exists() else 1)" 2>/dev/null; then
  python manage.py train_models --activate
fi
# Replay the real bars through collector -> features -> models -> validator -> execution worker
# -> audit trail, surveillance and live screens, and serve the dashboard meanwhile.
exec python manage.py run_embedded --port "${PORT:-8000}"
