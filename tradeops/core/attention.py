"""What needs a person's attention, for the home page (``settings.HOME_ATTENTION``).

Each app that owns something a role must act on offers a callable ``(user) -> list[Item]``,
named by dotted path in settings (core never imports a domain app). The home page shows the
items the user may see, most urgent first; an app returns nothing for a role that may not see
its data (a trader is never told that an alert exists: 2016/957 Art. 5).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

URGENT, ATTENTION, CALM = "urgent", "attention", "calm"
_ORDER = {URGENT: 0, ATTENTION: 1, CALM: 2}


@dataclass(frozen=True)
class Item:
    title: str  # "Open alerts"
    count: int | None  # None: a state, not a count
    what: str  # one line: what it is and what to do
    url: str
    level: str = CALM  # urgent | attention | calm


def attention_for(user) -> list[Item]:
    """Every app's items for ``user``, most urgent first (stable within a level)."""
    items: list[Item] = []
    for dotted in getattr(settings, "HOME_ATTENTION", []):
        items.extend(import_string(dotted)(user))
    return sorted(items, key=lambda item: _ORDER.get(item.level, 3))
