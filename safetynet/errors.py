"""The project's exception tree.

Every error that SafetyNet raises on purpose derives from one root, so a caller (the command line,
the server) can tell a refused input or a failed device from a bug::

    SafetyNetError
    ├── InputError            bad input from outside: a file, a line, a form, an API body
    │   ├── ReportError       a report that breaks spec/reports.md (names field and value)
    │   └── ScenarioError     a simulator scenario file that cannot be used
    ├── ConfigError           settings that cannot work (a default secret outside demo mode, ...)
    └── DeviceError           a sample source or serial unit that failed or went away

Packages add their own subclasses under these branches; none raises a bare ``Exception``.
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


class ConfigError(SafetyNetError):
    """The settings cannot work as given."""


class DeviceError(SafetyNetError):
    """A radio, a stream or a serial unit failed or disappeared."""
