"""The project's exception tree.

Every error that SafetyNet raises on purpose derives from one root, so a caller (the command line,
the server) can tell a refused input or a failed device from a bug::

    SafetyNetError
    ├── InputError              bad input from outside: a file, a line, a form, an API body
    │   ├── ReportError         a report that breaks spec/reports.md (names field and value)
    │   ├── ScenarioError       a simulator scenario file that cannot be used
    │   └── BodyError           a request body unreadable as a whole (not UTF-8, not JSON, ...)
    │       ├── BodyTooLargeError     over the size or count limit
    │       └── MediaTypeError        a content type that is not taken
    ├── NotFoundError           no such record (a client, a search), or none active by that id
    ├── NotAuthenticatedError   no login and no receiver token where one is needed
    ├── ForbiddenError          the role may not, or a request without its CSRF token
    ├── ConflictError           the record changed since it was read, a uniqueness rule would
    │                           break, or the record's state does not allow the change
    ├── RateLimitError          too many requests from one sender; says when to retry
    ├── UnavailableError        not ready yet (a search's live state being rebuilt); says when
    ├── ConfigError             settings that cannot work (a default secret outside demo mode, ...)
    └── DeviceError             a sample source or serial unit that failed or went away

Packages add their own subclasses under these branches; none raises a bare ``Exception``. The
server maps each kind to one HTTP status in one table (``ui/errors.py``); the command line prints
the message of any of them.
"""

from __future__ import annotations


class SafetyNetError(Exception):
    """Root of every error SafetyNet raises on purpose."""


class InputError(SafetyNetError, ValueError):
    """Input from outside the program is malformed or out of range."""


class ReportError(InputError):
    """A report breaks the rules of spec/reports.md.

    ``field`` is the dotted path of the offending field (``"status.seq"``), ``value`` the value
    that was refused, and the message says what is valid.
    """

    def __init__(self, field: str, value: object, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.value = value
        self.message = message


class ScenarioError(InputError):
    """A scenario file for the simulator cannot be used."""


class BodyError(InputError):
    """A request body cannot be read as a whole (not UTF-8, not JSON, not an array)."""


class BodyTooLargeError(BodyError):
    """A request body over its size limit, or with more items than one body may hold."""


class MediaTypeError(BodyError):
    """A request body in a content type that is not taken (the message names those that are)."""


class NotFoundError(SafetyNetError, LookupError):
    """No record by that id (a client, a search, a bracelet), or none active by that id."""


class NotAuthenticatedError(SafetyNetError):
    """The request needs a login (or a receiver's token) and has none that is valid.

    ``challenge`` is the authentication scheme to ask for (``"Bearer"``), if any.
    """

    def __init__(self, message: str, challenge: str | None = None) -> None:
        super().__init__(message)
        self.challenge = challenge


class ForbiddenError(SafetyNetError):
    """The acting user's role does not allow this, or the request lacks its CSRF token."""


class ConflictError(SafetyNetError):
    """The record changed since it was read, a rule of uniqueness would break, or the record's
    state does not allow the change (a search that is no longer active)."""


class RateLimitError(SafetyNetError):
    """Too many requests from one sender; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnavailableError(SafetyNetError):
    """Not ready to answer yet (a search's live state is being rebuilt after a restart);
    ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ConfigError(SafetyNetError):
    """The settings cannot work as given."""


class DeviceError(SafetyNetError):
    """A radio, a stream or a serial unit failed or disappeared."""
