"""Typed errors of the engine (layer L0).

Every error the engine raises on purpose is a `DockyardError`. Each class carries the HTTP status
the Engine API answers with and the exit code the CLI exits with, so adapters map errors without
knowing where they came from. Messages are for users: what went wrong, where, how to fix it.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Root of the engine's errors. Exit code 1 as Docker's CLI uses for daemon errors."""

    http_status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(DockyardError):
    """The request is malformed: a bad reference, flag value, or file."""

    http_status = 400


class NotFound(DockyardError):
    """The named object does not exist."""

    http_status = 404


class AlreadyExists(DockyardError):
    """An object with that name or digest already exists."""

    http_status = 409


class Conflict(DockyardError):
    """The object is in use or in a state that forbids the operation."""

    http_status = 409


class FailedPrecondition(DockyardError):
    """The operation cannot run in the current state (e.g. a container that is not running)."""

    http_status = 409


class Unavailable(DockyardError):
    """A dependency (kernel feature, peer tool, registry) is not available."""

    http_status = 503


class DigestMismatch(InvalidArgument):
    """Content did not hash to the digest it was announced with."""


class UsageError(DockyardError):
    """The command line itself is wrong. Docker's CLI exits 125 for its own errors in `run`,
    and 1 with a usage line elsewhere; the CLI decides, this class marks the case."""

    http_status = 400
    exit_code = 125
