#!/usr/bin/env python
"""Django's command-line utility for tradeops."""

import os
import sys

# Batch commands that read a file and write a file: they serve no HTTP or WebSocket request and
# send no Celery task, so Django is set up without the servers' and the task queue's imports
# (Daphne's server and Twisted reactor, Celery's app, the OpenAPI schema extensions: ~1.5 s of
# CPU together). ``tradeops.settings.base`` and ``tradeops/__init__.py`` read the flag.
BATCH_COMMANDS = frozenset({"surveil"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeops.settings.local")
    if len(sys.argv) > 1 and sys.argv[1] in BATCH_COMMANDS:
        os.environ.setdefault("TRADEOPS_BATCH_CLI", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
