"""Trading domain errors (all ApplicationError, with stable codes)."""

from tradeops.core.errors import ApplicationError, Conflict


class OrderTransitionError(Conflict):
    code = "invalid_order_transition"


class OrderValidationError(ApplicationError):
    code = "invalid_order"


class ExecutionError(ApplicationError):
    code = "invalid_execution"
