"""Writes of the actions domain: action items (``items``), the overdue digest (``reminders``),
remediation plans (``plans``) and the evaluation of their milestones (``milestones``)."""
