"""Risk controls in the system of record: risk limits and the kill switch (RTS 6 Art. 12, 15, 17).

``services`` are the only writers (audited with before/after, published on the outbox);
``selectors`` read them for the execution worker, the admin and the API.
"""
