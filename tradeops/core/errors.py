"""Domain errors. Every refusal a user or integration can see subclasses ApplicationError."""


class ApplicationError(Exception):
    """A domain rule refused the request. ``code`` is stable: clients and tests match on it."""

    code = "application_error"
    http_status = 400

    def __init__(self, message: str, *, code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.message


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class PermissionDenied(ApplicationError):
    code = "permission_denied"
    http_status = 403


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409


class FourEyesViolation(PermissionDenied):
    """The same person tried to both make and approve a change or a disposition (compliance rules,
    cases, risk limits, the report a person generated): the check is on the person, whatever
    roles they hold."""

    code = "four_eyes"


def refusal_text(error: Exception) -> str:
    """What a person is shown when a rule refuses what they asked, in the same words wherever
    they asked it (a screen's message, a form, a management command's error): ``Refused: `` and
    the reason. ``error``: an ApplicationError, or anything with ``messages`` (Django's
    ValidationError: each message, joined by ``; ``)."""
    if isinstance(error, ApplicationError):
        return f"Refused: {error.message}"
    return "Refused: " + "; ".join(getattr(error, "messages", None) or [str(error)])
