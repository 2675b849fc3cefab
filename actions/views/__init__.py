"""Pages of action items and remediation plans: the program's board, lists and plans, and the partner portal."""
