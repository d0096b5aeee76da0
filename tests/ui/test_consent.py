"""Consent in the enrollment record, through the form and the API: ticking a consent needs who
gave it (refused beside the field, what was typed kept, nothing stored), the moment it changed
is recorded, an unchanged save keeps it, and unticking withdraws it."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.ui.test_forms import _page_form
from tests.ui_support import login, seed, settings_for
from ui.app import create_app


def test_consent_needs_who_gave_it_and_is_stamped_when_it_changes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seed(url, now=datetime.now(UTC))
    app = create_app(settings_for(tmp_path, url))
    with TestClient(app) as client:
        csrf = login(client, "family")
        before = client.get("/api/v1/clients").json()
        form = {"csrf": csrf, "checkboxes_shown": "1", "first_name": "Ada",
                "last_name": "Lind", "date_of_birth": "1950-02-02",
                "consent_home_alerts": "on", "nickname": "Addie"}  # fmt: skip
        refused = client.post("/clients/new", data=form)
        assert refused.status_code == 422
        found = dict(re.findall(r'id="err-([^"]+)" role="alert">([^<]+)<', refused.text))
        assert "who gave the consent" in html.unescape(found["consent_given_by"])
        assert "Addie" in refused.text  # what was typed is kept
        assert re.search(r'name="consent_home_alerts" checked', refused.text)
        assert client.get("/api/v1/clients").json() == before
        form["consent_given_by"] = "Mary Lind (daughter, guardian)"
        made = client.post("/clients/new", data=form, follow_redirects=False)
        assert made.status_code == 303
        ada = made.headers["location"].split("?")[0].rsplit("/", 1)[1]
        record = client.get(f"/api/v1/clients/{ada}").json()
        assert record["consent_home_alerts"] is True
        assert record["consent_fleet_sightings"] is False
        assert record["consent_given_by"] == "Mary Lind (daughter, guardian)"
        stamped = datetime.fromisoformat(record["consent_recorded_at"])
        assert abs((datetime.now(UTC) - stamped).total_seconds()) < 60
        page = client.get(f"/clients/{ada}").text
        assert 'id="consent-recorded"' in page
        # Saved unchanged: the consent and its moment stay as they were.
        unchanged = _page_form(client, ada)
        assert unchanged.get("consent_home_alerts") == "on"
        assert client.post(f"/clients/{ada}", data=unchanged,
                           follow_redirects=False).status_code == 303  # fmt: skip
        again = client.get(f"/api/v1/clients/{ada}").json()
        assert again["consent_recorded_at"] == record["consent_recorded_at"]
        # Unticked: withdrawn, and the moment it was withdrawn recorded.
        withdrawn = _page_form(client, ada)
        del withdrawn["consent_home_alerts"]
        assert client.post(f"/clients/{ada}", data=withdrawn,
                           follow_redirects=False).status_code == 303  # fmt: skip
        after = client.get(f"/api/v1/clients/{ada}").json()
        assert after["consent_home_alerts"] is False
        assert after["consent_recorded_at"] >= record["consent_recorded_at"]
        # The API refuses a consent that is not yes or no, and one given by no one.
        bad = client.post("/api/v1/clients", headers={"X-CSRF-Token": csrf},
                          json={"first_name": "Bo", "last_name": "Lind",
                                "date_of_birth": "1951-01-01", "consent_fleet_sightings": "yes",
                                })  # fmt: skip
        assert bad.status_code == 422
        assert "yes or no" in bad.text
        nobody = client.post("/api/v1/clients", headers={"X-CSRF-Token": csrf},
                             json={"first_name": "Bo", "last_name": "Lind",
                                   "date_of_birth": "1951-01-01",
                                   "consent_fleet_sightings": True})  # fmt: skip
        assert nobody.status_code == 422
        assert "who gave the consent" in nobody.text
    app.state.safetynet.engine.dispose()
