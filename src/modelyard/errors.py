"""The one error tree of modelyard.

Every error a user can cause is a ``ModelyardError``; the API maps the branches to
HTTP status codes and the CLI to exit code 2, each in one place::

    ModelyardError
     ├── NotFound          a named thing does not exist             (HTTP 404)
     ├── Conflict          the request clashes with stored state    (HTTP 409)
     ├── InvalidInput      the request itself is malformed          (HTTP 422)
     │    ├── SignatureError   model input breaks the signature     (HTTP 422)
     │    └── NotReproducible  a run lacks what re-running it needs (SDK only)
     ├── ReproductionFailed  a run's entry point failed when run again (SDK only)
     ├── PermissionDenied  the caller may not do this               (HTTP 403)
     │    └── NotAuthenticated  no valid API key                    (HTTP 401)
     ├── IntegrityError    stored data failed a hash check          (HTTP 409)
     ├── NotMigrated       the database schema is not at head       (HTTP 503)
     ├── NotConfigured     a setting this needs is missing or wrong (HTTP 503)
     ├── StorageUnavailable  the artifact store's disk is full or read-only (HTTP 507)
     └── serving: BadRequest 400, TooLarge 413, ModelFailed 500,
         NotReady 503, LogUnavailable 503

Messages name the thing and the bad value: "model 'churn' has no version 7
(latest is 5)".
"""

from __future__ import annotations

import errno
import os


class ModelyardError(Exception):
    """Root of every error modelyard raises on purpose."""

    status_code = 400
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(ModelyardError):
    status_code = 404
    kind = "not_found"


class Conflict(ModelyardError):
    status_code = 409
    kind = "conflict"


class InvalidInput(ModelyardError):
    status_code = 422
    kind = "invalid_input"


class SignatureError(InvalidInput):
    """Model input that does not match the version's signature; names the column."""

    kind = "signature_error"

    def __init__(self, column: str, problem: str, *, row: int | None = None) -> None:
        super().__init__(f"column '{column}': {problem}")
        self.column = column
        self.problem = problem
        self.row = row  # the first bad row of the checked input (from 0), when one is

    def located(self, source: str, offset: int) -> SignatureError:
        """The same error for rows read from ``source`` starting at row ``offset``:
        "'in.parquet', row 70003: column 'age': expected integer, got 'old'"."""
        if self.row is None:
            return SignatureError(self.column, f"{self.problem} (in '{source}')")
        row = offset + self.row
        problem = self.problem.replace(f" at row {self.row}", "", 1)
        located = SignatureError(self.column, problem, row=row)
        located.message = f"'{source}', row {row}: column '{self.column}': {problem}"
        located.args = (located.message,)
        return located


class NotReproducible(InvalidInput):
    """A run that cannot be run again as recorded: every missing or changed piece
    (code, data, entry point, environment) is in ``problems``, and in the message."""

    kind = "not_reproducible"

    def __init__(self, subject: str, problems: list[str]) -> None:
        super().__init__(f"{subject} cannot be reproduced: " + "; ".join(problems))
        self.problems = problems


class ReproductionFailed(ModelyardError):
    """The recorded entry point, run again, failed or logged no run."""

    kind = "reproduction_failed"


class PermissionDenied(ModelyardError):
    status_code = 403
    kind = "permission_denied"


class NotAuthenticated(PermissionDenied):
    status_code = 401
    kind = "not_authenticated"


class IntegrityError(ModelyardError):
    status_code = 409
    kind = "integrity_error"


class NotMigrated(ModelyardError):
    status_code = 503
    kind = "not_migrated"


class NotConfigured(ModelyardError):
    """The process lacks a setting the request needs (e.g. ``MODELYARD_SECRET_KEY``)."""

    status_code = 503
    kind = "not_configured"


class StorageUnavailable(ModelyardError):
    """A store could not take a write: the disk under the artifact store, the prediction
    log or the metadata database is full, read-only or not writable by the server.
    Nothing was stored; the same request succeeds once an operator frees space or makes
    the store writable again."""

    status_code = 507
    kind = "storage_unavailable"


STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
)
"""What an ``OSError`` of a write says about the disk rather than about the program."""


def os_reason(exc: OSError) -> str:
    """An ``OSError`` in a message's words: "no space left on device"."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


# -- the serving data plane --------------------------------------------------


class BadRequest(ModelyardError):
    """A request body that is not JSON."""

    status_code = 400
    kind = "bad_request"


class TooLarge(ModelyardError):
    """A request body over the serving process's limit."""

    status_code = 413
    kind = "too_large"


class ModelFailed(ModelyardError):
    """The model raised on input that passed its signature."""

    status_code = 500
    kind = "model_error"


class NotReady(ModelyardError):
    """The endpoint is still loading its versions."""

    status_code = 503
    kind = "not_ready"


class LogUnavailable(ModelyardError):
    """The answer was computed but could not be logged, so it is not given: "prediction
    log cannot be written: no space left on device ('/srv/yard/predictions/churn')"."""

    status_code = 503
    kind = "log_unavailable"


def envelope(kind: str, message: str) -> dict[str, dict[str, str]]:
    """The body of every HTTP error answer, from the API server and the serving process:

    >>> envelope("not_found", "run 'f00d' does not exist")
    {'error': {'kind': 'not_found', 'message': "run 'f00d' does not exist"}}
    """
    return {"error": {"kind": kind, "message": message}}


# the branches an unknown error kind falls back to, by its HTTP status
BRANCHES: tuple[type[ModelyardError], ...] = (
    NotFound,
    Conflict,
    InvalidInput,
    PermissionDenied,
    NotAuthenticated,
    IntegrityError,
    NotMigrated,
)

ERROR_KINDS: dict[str, type[ModelyardError]] = {
    cls.kind: cls
    for cls in (
        ModelyardError,
        NotFound,
        Conflict,
        InvalidInput,
        PermissionDenied,
        NotAuthenticated,
        IntegrityError,
        NotMigrated,
        NotConfigured,
        StorageUnavailable,
        BadRequest,
        TooLarge,
        ModelFailed,
        NotReady,
        LogUnavailable,
    )
}
