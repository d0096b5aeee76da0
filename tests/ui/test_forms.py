"""The enrol form as the server reads it (no browser, so none of the page's own checks): every
refusal at once, each beside its field in a family's words, everything typed kept, nothing
stored."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app


def test_every_refusal_at_once_by_its_field_and_nothing_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seed(url, now=datetime.now(UTC))
    app = create_app(settings_for(tmp_path, url))
    with TestClient(app) as client:
        csrf = login(client, "family")
        before = client.get("/api/v1/clients").json()
        form = {"csrf": csrf, "checkboxes_shown": "1", "first_name": "", "last_name": "X" * 300,
                "date_of_birth": "2099-01-01", "height_cm": "abc", "caregiver_phone_0": "12",
                "place_lat_0": "95", "place_label_0": "Corner shop",
                "scars_marks": "scar on the chin"}  # fmt: skip
        not_a_picture = {"photo": ("a.jpg", b"not a picture", "image/jpeg")}
        answer = client.post("/clients/new", data=form, files=not_a_picture)
        assert answer.status_code == 422
        found = dict(re.findall(r'id="err-([^"]+)" role="alert">([^<]+)<', answer.text))
        messages = {k: html.unescape(v) for k, v in found.items()}
        assert set(messages) >= {"first_name", "last_name", "date_of_birth", "photo",
                                 "height_cm", "caregiver_name_0", "caregiver_phone_0",
                                 "place_lat_0"}  # fmt: skip
        assert "300 characters" in messages["last_name"]
        assert "future" in messages["date_of_birth"]
        assert "JPEG or PNG" in messages["photo"]
        assert "caregiver 1" in messages["caregiver_phone_0"]
        assert "_" not in " ".join(messages.values())  # no field keys in what people read
        assert "scar on the chin" in answer.text  # what was typed is still there
        assert "Corner shop" in answer.text
        assert client.get("/api/v1/clients").json() == before
        # A good record with an unreadable photo: refused for the photo alone, not stored.
        good = {"csrf": csrf, "checkboxes_shown": "1", "first_name": "Ada",
                "last_name": "Lind", "date_of_birth": "1950-02-02"}  # fmt: skip
        broken = {"photo": ("a.png", b"\x89PNG broken", "image/png")}
        answer = client.post("/clients/new", data=good, files=broken)
        assert answer.status_code == 422
        assert 'id="err-photo" role="alert"' in answer.text
        assert client.get("/api/v1/clients").json() == before
        # Unticked "speaks" is stored as not speaking.
        answer = client.post("/clients/new", data=good, follow_redirects=False)
        assert answer.status_code == 303
        client_id = answer.headers["location"].split("?")[0].rsplit("/", 1)[1]
        assert client.get(f"/api/v1/clients/{client_id}").json()["verbal"] is False
    app.state.safetynet.engine.dispose()
