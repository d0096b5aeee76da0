"""What the people the program names for searches are told: a search opened, the person found.

Called where the registry opens a search and marks it found; the notices go out once the
transaction commits, in the background (:mod:`registry.notify`), and nothing is sent when the
program names no one. A notice says who, when, where and which bracelet, never anything
clinical; how the person was found stays in SafetyNet.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.models import Bracelet, BraceletStatus, Client, NotifyScope, Search
from registry.notify import Notice, local_day, notifier_of, targets, to_each, when


def _search_facts(session: Session, search: Search) -> tuple[str, str]:
    client = session.get(Client, search.client_id)
    name = "an enrolled client" if client is None else f"{client.first_name} {client.last_name}"
    bracelet = session.scalar(select(Bracelet).where(
        Bracelet.client_id == search.client_id,
        Bracelet.status == BraceletStatus.ASSIGNED))  # fmt: skip
    radio = ("No bracelet on record: search by sight." if bracelet is None else
             f"Bracelet {bracelet.bracelet_id:04X}, channel {bracelet.channel}.")  # fmt: skip
    return name, radio


def search_opened(session: Session, search: Search, warning: str | None = None) -> None:
    """Tell the people the program names for searches that ``search`` opened (after commit)."""
    recipients = targets(session, NotifyScope.SEARCH)
    if not recipients:
        return
    zone = notifier_of(session).zone
    name, radio = _search_facts(session, search)
    lines = [
        f"A search for {name} opened at {when(search.opened_at, zone)}.",
        f"Last seen at {when(search.last_known_at, zone)}, at "
        f"{search.last_known_lat_deg:.5f}, {search.last_known_lon_deg:.5f}.",
        radio,
    ]
    if search.clothing:
        lines.append(f"Wearing: {search.clothing}")
    if warning:
        lines.append(f"Warning: {warning}")
    lines.append(f"The search is {search.id} in SafetyNet.")
    notice = Notice(f"search-opened:{search.id}", f"Search opened: {name}", "\n".join(lines))
    to_each(session, recipients, notice, local_day(search.opened_at, zone))


def search_found(session: Session, search: Search) -> None:
    """Tell the people the program names for searches that the person of ``search`` was found
    (after commit). Their condition stays in SafetyNet."""
    recipients = targets(session, NotifyScope.SEARCH)
    if not recipients or search.found_at is None:
        return
    zone = notifier_of(session).zone
    name, _ = _search_facts(session, search)
    where = ("" if search.found_lat_deg is None or search.found_lon_deg is None
             else f", at {search.found_lat_deg:.5f}, {search.found_lon_deg:.5f}")  # fmt: skip
    text = (
        f"{name} was found at {when(search.found_at, zone)}{where}.\n"
        f"The search ({search.id}) opened at {when(search.opened_at, zone)}. "
        "How they were found is in SafetyNet."
    )
    notice = Notice(f"search-found:{search.id}", f"Found: {name}", text)
    to_each(session, recipients, notice, local_day(search.found_at, zone))
