"""Writes of the actions domain: action items (``items``), their follow-up (``followup``) and
escalation (``escalation``), the checks every action write shares (``checks``), the overdue digest
(``reminders``), remediation plans (``plans``) and the evaluation of their milestones (``milestones``)."""
