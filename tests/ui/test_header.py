"""The pages' header names who is logged in and their role in a person's words."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.ui_support import ROLES, login, seed, settings_for
from ui.app import create_app

# Written out here, not read from the code: what a person should read for each login's role.
SAID = {
    "admin": "Administrator",
    "staff": "Program staff",
    "dispatcher": "Dispatcher",
    "team1": "Search team",
    "clinician": "Clinician",
    "family": "Family",
}


def test_the_header_says_each_role_in_words(db_url: str, tmp_path: Path) -> None:
    seed(db_url)
    app = create_app(settings_for(tmp_path, db_url))
    assert set(SAID) <= set(ROLES)
    for username, label in SAID.items():
        with TestClient(app) as client:
            login(client, username)
            page = client.get("/", headers={"accept": "text/html"})
            assert page.status_code == 200, username
            who = page.text.split('<span class="who">', 1)[1].split("</span>", 1)[0]
            assert who == f"{username.title()} · {label}", username
            assert "_" not in who
    app.state.safetynet.engine.dispose()
