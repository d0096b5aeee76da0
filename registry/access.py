"""Who may see and do what: one table, checked in one place.

Kinds of data: ``public`` (name, photo, physical description, language: what a searcher needs to
recognise and approach someone), ``contacts`` (caregivers, places), ``clinical`` (diagnoses,
medications, triggers, how to approach and calm, mobility aids), ``co_response`` (encounters
with mental-health clinicians), ``program`` (bracelets, batteries, tests), ``search`` (searches,
their log and links). Actions: ``read`` and ``write``.

Beside the matrix, :data:`DUTIES` names who may do what is not one kind of data: send reports
from the field by login, browse the client list, see the program's lists, issue receiver tokens,
choose where the program's notices go.

Family members act only on their own clients (the family links) and never see co-response
detail; clinical detail is read only by dispatchers, clinicians and admins (a family writes it
when enrolling); co-response detail is for clinicians and admins only.
"""

from __future__ import annotations

from typing import Literal

from registry.models import Role

Kind = Literal["public", "contacts", "clinical", "co_response", "program", "search"]
Action = Literal["read", "write"]

R, W = "read", "write"
KINDS = ("public", "contacts", "clinical", "co_response", "program", "search")
MATRIX: dict[Role, dict[str, set[str]]] = {
    Role.ADMIN: {k: {R, W} for k in KINDS},
    Role.PROGRAM_STAFF: {"public": {R, W}, "contacts": {R, W}, "program": {R, W}, "search": {R}},
    Role.DISPATCHER: {"public": {R}, "contacts": {R}, "clinical": {R}, "program": {R},
                      "search": {R, W}},
    Role.SEARCHER: {"public": {R}, "search": {R}},
    Role.CLINICIAN: {"public": {R}, "contacts": {R}, "clinical": {R, W}, "co_response": {R, W},
                     "search": {R}},
    # A family provides the clinical detail when enrolling but, as the rules say, only
    # dispatchers, clinicians and admins read it back.
    Role.FAMILY: {"public": {R, W}, "contacts": {R, W}, "clinical": {W}, "program": {R, W}},
}  # fmt: skip


# Duties that are not reading or writing one kind of data: who may do them.
Duty = Literal[
    "send_field_reports", "browse_clients", "program_lists", "receiver_tokens", "notify_targets",
    "fleet_sightings",
]  # fmt: skip
DUTIES: dict[Duty, frozenset[Role]] = {
    # Manual bearings, silences and "heard here" from a browser (a searcher only while on a team
    # of an active search: the ingest checks that against the searches).
    "send_field_reports": frozenset({Role.SEARCHER, Role.DISPATCHER, Role.ADMIN}),
    # The list of clients on the home page: everyone but a searcher, who sees a client only
    # through the search that looks for them.
    "browse_clients": frozenset(set(Role) - {Role.SEARCHER}),
    # The program's lists: batteries due, missed daily tests, the bracelet inventory.
    "program_lists": frozenset({Role.PROGRAM_STAFF, Role.ADMIN}),
    # Issuing a token a field receiver sends its reports with.
    "receiver_tokens": frozenset({Role.ADMIN}),
    # Where the program's notices go (e-mail, SMS gateways, chat webhooks; their URLs hold
    # passwords): program staff see the targets, masked, and the notices sent.
    "notify_targets": frozenset({Role.ADMIN}),
    # The fleet's sealed sightings of a client: only while a search for them is open (the
    # registry refuses every role otherwise), and every reading audited.
    "fleet_sightings": frozenset({Role.DISPATCHER, Role.CLINICIAN, Role.ADMIN}),
}


def may(role: Role, duty: Duty) -> bool:
    """Whether ``role`` may do ``duty`` (see :data:`DUTIES`)."""
    return role in DUTIES[duty]


def allowed(role: Role, action: Action, kind: Kind, own_client: bool = True) -> bool:
    """Whether ``role`` may ``action`` data of ``kind`` (for family: of this client only)."""
    if role is Role.FAMILY and not own_client:
        return False
    return action in MATRIX.get(role, {}).get(kind, set())
