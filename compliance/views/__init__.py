"""The compliance desk's screens: the alert queue, the case view, rules, reports, the order's
story. Views parse, authorise, call one selector or service, render (STYLE.md habit 3)."""
