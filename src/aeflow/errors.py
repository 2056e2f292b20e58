"""Errors meant for people.

Every failure a user can cause (bad data, bad params, a missing folder, an unreachable mirror) is raised as
an :class:`AeflowError`. Stage entry points catch exactly this class, print the message without a traceback
and exit non-zero, so the message itself must say which file, which field, what was expected and how to
fix it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AeflowError(Exception):
    """A failure caused by the user's inputs, with a message that explains how to fix it."""


class ParamsError(AeflowError):
    """``params.yaml`` (or an override) does not match the typed schema."""


class DataError(AeflowError):
    """An input data file is missing, unreadable or malformed."""


class ValidationFailed(AeflowError):
    """Ingested data broke one or more great-expectations expectations."""


class DownloadError(AeflowError):
    """A download source could not be reached after bounded retries."""


class TrackingError(AeflowError):
    """The MLflow store could not be used as configured."""
