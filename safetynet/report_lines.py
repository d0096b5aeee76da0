"""JSON Lines of reports: one report per line, as the command line reads and writes them.

:class:`ReportReader` iterates over the reports of a text stream. A bad line raises
:class:`BadLineError` (with its 1-based line number) when ``on_error="stop"``; with
``on_error="skip"`` the line is logged, counted in :attr:`ReportReader.skipped` and passed over.
Blank lines are ignored. :func:`write_report` writes one report as one line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from safetynet.errors import InputError, ReportError
from safetynet.reports import Report, parse_report, report_to_json

log = logging.getLogger(__name__)

OnError = Literal["stop", "skip"]


class BadLineError(InputError):
    """A line of a JSON Lines file is not a valid report."""

    def __init__(self, line_no: int, error: ReportError, source: str = "") -> None:
        where = f"{source}:" if source else "line "
        super().__init__(f"{where}{line_no}: {error}")
        self.line_no = line_no
        self.error = error


@dataclass
class ReportReader:
    """Iterate over the reports in ``lines`` (a text stream or any iterable of lines)."""

    lines: Iterable[str]
    on_error: OnError = "stop"
    source: str = ""
    skipped: list[BadLineError] = field(default_factory=list)

    def __iter__(self) -> Iterator[Report]:
        for line_no, line in enumerate(self.lines, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                yield parse_report(text)
            except ReportError as err:
                bad = BadLineError(line_no, err, self.source)
                if self.on_error == "stop":
                    raise bad from err
                log.debug("skipping bad report: %s", bad)
                self.skipped.append(bad)


def read_reports(path: Path, on_error: OnError = "stop") -> tuple[list[Report], list[BadLineError]]:
    """All reports of a JSON Lines file, and the bad lines skipped (empty with ``"stop"``)."""
    with path.open(encoding="utf-8") as stream:
        reader = ReportReader(stream, on_error=on_error, source=str(path))
        reports = list(reader)
    return reports, reader.skipped


def write_report(stream: IO[str], report: Report) -> None:
    """Write ``report`` as one JSON line."""
    stream.write(report_to_json(report))
    stream.write("\n")
