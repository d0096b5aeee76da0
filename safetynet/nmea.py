"""NMEA 0183 framing, shared by the handheld emulator and the handheld reader (SNHH-1).

``$<talker+type>,<fields>*<HH>\\r\\n``: ``HH`` is the XOR of every byte between ``$`` and ``*``,
as two upper-case hex digits.
"""

from __future__ import annotations

from functools import reduce


def checksum(body: str) -> int:
    """XOR of the bytes of ``body`` (the text between ``$`` and ``*``)."""
    return reduce(lambda acc, byte: acc ^ byte, body.encode("ascii"), 0)


def sentence(*fields: str) -> str:
    """A complete sentence with checksum and CRLF from its fields (the first is the address)."""
    body = ",".join(fields)
    return f"${body}*{checksum(body):02X}\r\n"


def split_sentence(line: str) -> list[str] | None:
    """The fields of a sentence whose checksum is right, or None.

    ``line`` may end with ``\\r\\n`` or ``\\n``; a sentence without ``*HH`` is refused.
    """
    text = line.rstrip("\r\n")
    if not text.startswith("$") or len(text) < 5 or text[-3] != "*":
        return None
    body, given = text[1:-3], text[-2:]
    try:
        expected = int(given, 16)
    except ValueError:
        return None
    if any(not 32 <= ord(ch) < 127 for ch in body) or checksum(body) != expected:
        return None
    return body.split(",")
