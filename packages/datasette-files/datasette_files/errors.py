"""The one error a request can fail with: an HTTP status and a message.

Anything below the views (uploads, imports, storage calls) raises
``HTTPError``; the views' wrappers turn it into the JSON error shape or the
HTML error page. Storages never raise it: they raise the exceptions in
``datasette_files.base`` and ``Source.call`` maps those to a status.
"""

from __future__ import annotations


class HTTPError(Exception):
    """A client-visible failure with the HTTP status it maps to."""

    def __init__(self, status: int, message: str, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        # More keys for the JSON error body, e.g. the id of a duplicate.
        self.extra = extra or {}
