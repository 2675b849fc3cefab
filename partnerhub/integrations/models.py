"""Data sources, CRM connectors, sync runs and facts."""
