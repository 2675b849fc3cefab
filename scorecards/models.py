"""Scorecards: models arrive with the issue that builds this area."""
