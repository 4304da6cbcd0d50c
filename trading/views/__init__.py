"""The operations console's screens (traders, risk managers; read-only for compliance and
auditors). Views parse, authorise, call one selector or service, render."""
