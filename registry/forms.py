"""What the pages' forms take from the registry: the client's own fields, typed by their
database columns (one list, so a field added to the record reaches the form without a second
list), and the check that a bracelet a form names is one of the client's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.models import CLINICAL_FIELDS, Bracelet, Client
from registry.service import PUBLIC_FIELDS, RegistryInputError

_KINDS = {str: "text", int: "int", bool: "bool", date: "date"}


@dataclass(frozen=True)
class ClientField:
    """One field of a client's own record as a form takes it: ``kind`` is "text", "int",
    "bool" or "date" (by the column's type), ``default`` the column's default (for flags)."""

    name: str
    kind: str
    clinical: bool
    default: Any = None


def client_fields() -> tuple[ClientField, ...]:
    """The client's public fields, then the clinical ones (``registry.service.PUBLIC_FIELDS``,
    ``registry.models.CLINICAL_FIELDS``), typed by their database columns."""
    fields = []
    for name in (*PUBLIC_FIELDS, *CLINICAL_FIELDS):
        column = Client.__table__.columns[name]
        default = None if column.default is None else getattr(column.default, "arg", None)
        kind = _KINDS[column.type.python_type]
        fields.append(ClientField(name, kind, name in CLINICAL_FIELDS, default))
    return tuple(fields)


def check_bracelet_of(session: Session, bracelet_pk: str, client_id: str) -> None:
    """Refuse a bracelet (by its row id) that is not one of the client's."""
    row = session.get(Bracelet, bracelet_pk)
    if row is None or row.client_id != client_id:
        raise RegistryInputError("bracelet: not a bracelet of this client")
