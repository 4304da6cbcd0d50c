#!/usr/bin/env bash
# The embedded run: SQLite, in-memory bus, paper broker. Installs into .venv on first use,
# migrates, seeds (passwords are printed once), then serves the app on http://127.0.0.1:8000.
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
python manage.py migrate --noinput -v 0
python manage.py seed
exec python manage.py runserver 127.0.0.1:"${PORT:-8000}" --noreload
