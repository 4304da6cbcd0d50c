"""What every screen view shares: running one service for a form and saying what happened.

Views are entry points (STYLE.md habit 3): parse, authorise, call one service, redirect with a
message. A domain refusal (``ApplicationError``: four eyes, a wrong transition, a missing
reason) or a validation error is shown to the person as it is, never as a server error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from django.contrib import messages
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

from tradeops.core.errors import ApplicationError, PermissionDenied, refusal_text

T = TypeVar("T")


def action_run(
    request: HttpRequest, call: Callable[[], T], *, done: str | Callable[[T], str], back: str
) -> HttpResponse:
    """Call ``call`` (one service); on success flash ``done`` (or ``done(result)``, to name what
    the service did), on a refusal flash why; then go ``back`` (a local URL). A refusal for lack
    of rights answers 403 (the form should not have been offered)."""
    try:
        result = call()
    except PermissionDenied as exc:
        if exc.code in ("four_eyes",):
            messages.error(request, f"Refused (four eyes): {exc.message}")
            return HttpResponseRedirect(back)
        raise DjangoPermissionDenied(exc.message) from None
    except (ApplicationError, ValidationError) as exc:
        messages.error(request, refusal_text(exc))
    else:
        messages.success(request, done(result) if callable(done) else done)
    return HttpResponseRedirect(back)


def form_action_run(form, call: Callable[[], T], *, fields: Mapping[str, str] | None = None) -> T | None:
    """``action_run`` for a form that is shown again when refused (the person keeps what they
    typed): call ``call`` (one service) and return its result; on a domain refusal put the
    reason on the form instead, on the field its code names (``fields``: error code -> field
    name) or above the form, and return None. A refusal for lack of rights answers 403 (the form
    should not have been offered), as in ``action_run``."""
    try:
        return call()
    except PermissionDenied as exc:
        raise DjangoPermissionDenied(exc.message) from None
    except ApplicationError as exc:
        form.add_error((fields or {}).get(exc.code), refusal_text(exc))
    except ValidationError as exc:
        form.add_error(None, refusal_text(exc))
    return None


def local_url(request: HttpRequest, candidate: str, default: str) -> str:
    """``candidate`` when it is a URL on this site (a form's "next"), else ``default``."""
    if candidate and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()}):
        return candidate
    return default


def utc_param(value: str, *, period_end: bool = False) -> datetime | None:
    """An ISO 8601 date or date-time from a query string, as aware UTC (naive means UTC).
    Raises ValueError on anything else, a date the period cannot end on included (9999-12-31
    as ``period_end``: it has no next midnight).

    ``period_end``: the value ends a period, compared with ``<``. A bare date there means through
    that whole day (the next day's midnight), as a person who filters "from 26 to 26 November"
    means the 26th, not its first instant."""
    value = (value or "").strip()
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if period_end and _is_bare_date(value):
        try:
            parsed += timedelta(days=1)
        except OverflowError:
            raise ValueError(f"{value}: a period cannot end on the last representable day") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_bare_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def require_text(data, name: str, *, what: str) -> str:
    """A required free-text field of a form (``request.POST``): a reason, a note; stripped.
    ApplicationError (shown to the person) when it is empty."""
    value = (data.get(name) or "").strip()
    if not value:
        raise ApplicationError(f"{what} is required", code="reason_required")
    return value
