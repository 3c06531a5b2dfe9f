"""Exports that managers hand on: audience lists, memberships, the worklist, the audit trail.

Public entry points (each returns an ``ExportResult`` with the file, its
JSON sidecar and the row count):

- ``export_audience(db, settings, ref, fmt, out, filters, pseudonymise)``
- ``export_memberships(db, settings, fmt, out, pseudonymise)``
- ``export_prospects(db, settings, target, fmt, out, min_relevance, limit)``
- ``export_queue(db, settings, fmt, out, statuses)``
- ``export_actions(db, settings, fmt, out, since)``
"""

from bot.report.exports.exporters import (
    AudienceFilters,
    ExportResult,
    export_actions,
    export_audience,
    export_memberships,
    export_prospects,
    export_queue,
    parse_since,
)
from bot.report.exports.writers import FORMATS

__all__ = [
    "AudienceFilters", "ExportResult", "FORMATS", "export_actions", "export_audience", "export_memberships",
    "export_prospects", "export_queue", "parse_since",
]
