"""Writes for reviews: cadence rules, collaboration prompts, cycles, the review's life and its workspace.

Import from the module that holds a service (``reviews.services.cycles``, ...): this package
imports nothing itself, so loading one of them never pulls in the others.
"""
