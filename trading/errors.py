"""Trading domain errors (all ApplicationError, with stable codes)."""

from tradeops.core.errors import ApplicationError, Conflict


class OrderTransitionError(Conflict):
    code = "invalid_order_transition"


class OrderValidationError(ApplicationError):
    code = "invalid_order"


class ClientOrderIdReused(OrderValidationError):
    """A ``client_order_id`` (the idempotency key) already names an order or an order request
    with other terms: a conflict with what exists, not bad input (HTTP 409)."""

    code = "client_order_id_reused"
    http_status = 409


class ExecutionError(ApplicationError):
    code = "invalid_execution"
