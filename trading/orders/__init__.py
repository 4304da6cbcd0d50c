"""The order path: its writers, what they write, reconciliation, and what the execution worker
loads its hot state from.

- ``plan``: what an order write is (the ONE definition: rows, audit records, events);
- ``write``: how it reaches the database (the ORM; one statement on PostgreSQL);
- ``services``: ``order_commit``, ``order_create``, ``order_transition``, ``execution_record``,
  ``account_state_save``;
- ``reconcile``: ``order_reconcile`` and the position-mismatch alert and automatic kill;
- ``unrecorded``: an order the broker answered whose write failed (what is kept of it, the rules
  that settle it, the line of the execution worker's spool of them);
- ``selectors``: the worker's hot state and what reconciliation compares;
- ``outcome``, ``records``, ``marks``: pure rules and values (the broker's answer as steps, the
  audit and event of a step, marks and risk snapshots).
"""
