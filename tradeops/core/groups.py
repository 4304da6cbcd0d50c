"""Channels group names, in one module (STYLE.md habit 6).

Operators see trading activity; only compliance officers and auditors see compliance events
(surveillance alerts must never reach the subject's screen: MAR tipping-off, 2016/957 Art. 5).
"""

LIVE_TRADING = "live.trading"
LIVE_COMPLIANCE = "live.compliance"
