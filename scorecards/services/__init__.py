"""Writes for scorecards: the metric catalogue, governed versions, observations and recomputes.

Import from the module that holds a service (``scorecards.services.governance``, ...): this
package imports nothing itself, so loading one of them never pulls in the others.
"""
