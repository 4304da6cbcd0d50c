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
# requirements/demo.txt = base.txt + the demo market data (the backtesting package's real bars).
if ! python -c "import django, confluent_kafka, sklearn" 2>/dev/null || [ requirements/base.txt -nt .venv/.installed ] \
  || [ requirements/demo.txt -nt .venv/.installed ]; then
  pip install -q --disable-pip-version-check -r requirements/demo.txt
  touch .venv/.installed
fi

# The screens' chart library, from npm (package.json + package-lock.json), served by the app.
if [ ! -d node_modules/chart.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

unset DATABASE_URL EVENT_BUS BROKER
export DJANGO_SETTINGS_MODULE=tradeops.settings.local
# The paper broker's own book survives restarts, so the worker reconciles against it.
export EXECUTION_PAPER_JOURNAL_DIR="${EXECUTION_PAPER_JOURNAL_DIR:-var/paper-journal}"
python manage.py migrate --noinput -v 0
python manage.py seed
# The first run trains both models on the real EURUSD bars (about 10 s) and activates them.
# They have NO edge: out of sample they do not beat the naive baselines (supervised 50.34 %, neural
# 49.90 %, always-up 50.75 % of 2,946 hours; train_models prints it). They are activated anyway, with
# --allow-no-edge and the reason below (audited), so the demo pipeline has signals to trade; the
# dashboard's Models panel shows "NO EDGE" beside them. Never do this with money at stake.
if ! python manage.py shell -c "from mlmodels.models import ModelVersion; import sys; sys.exit(0 if ModelVersion.objects.filter(is_active=True).exists() else 1)" 2>/dev/null; then
  python manage.py train_models --activate --allow-no-edge \
    --reason "embedded demo: the shipped models have no edge over the baselines; activated only to show the pipeline on paper"
fi
# Replay the real bars through collector -> features -> models -> validator -> execution worker
# -> audit trail, surveillance and live screens, and serve the dashboard meanwhile.
exec python manage.py run_embedded --port "${PORT:-8000}"
