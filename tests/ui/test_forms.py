"""The enrol form as the server reads it (no browser, so none of the page's own checks): every
refusal at once, each beside its field in a family's words, everything typed kept, nothing
stored."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

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


def _page_form(client: TestClient, client_id: str) -> dict[str, str]:
    """The record page's form as a browser would send it unchanged: every input's value."""
    page = client.get(f"/clients/{client_id}").text
    form = page.split('id="client-form"', 1)[1].split("</form>", 1)[0]
    data: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="file"' in tag:
            continue
        if 'type="checkbox"' in tag:
            if " checked" in tag:
                data[name.group(1)] = "on"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for name, text in re.findall(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', form):
        data[name] = html.unescape(text)
    for name, body in re.findall(r'<select name="([^"]+)">(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected', body)
        if chosen:
            data[name] = chosen.group(1)
    return data


def test_saving_the_record_page_keeps_what_it_did_not_change(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    seeded = seed(url, now=datetime.now(UTC))
    app = create_app(settings_for(tmp_path, url))
    with TestClient(app) as client:
        csrf = login(client, "staff")
        people = [{"name": f"Carer {i}", "phone": f"+1 617 555 01{i:02d}"} for i in range(5)]
        made = client.post("/api/v1/clients", headers={"X-CSRF-Token": csrf},
                           json={"first_name": "Ida", "last_name": "Mae", "height_cm": 160,
                                 "date_of_birth": "1950-01-01", "caregivers": people})  # fmt: skip
        assert made.status_code == 201, made.text
        ida = made.json()["id"]
        # Five caregivers, a form that draws three blank rows by default: a save of the
        # nickname keeps all five.
        form = _page_form(client, ida)
        form["nickname"] = "Idie"
        form["height_cm"] = ""  # emptied: cleared
        assert client.post(f"/clients/{ida}", data=form, follow_redirects=False).status_code == 303
        record = client.get(f"/api/v1/clients/{ida}").json()
        assert [c["name"] for c in record["caregivers"]] == [p["name"] for p in people]
        assert record["nickname"] == "Idie"
        assert record["height_cm"] is None
        # A stale copy saved twice never overwrites the newer save.
        stale = _page_form(client, ida)
        newer = dict(stale, hair="grey")
        assert client.post(f"/clients/{ida}", data=newer, follow_redirects=False).status_code == 303
        stale["hair"] = "brown"
        first = client.post(f"/clients/{ida}", data=stale)
        assert first.status_code == 409
        assert "Someone else saved this record" in first.text
        assert client.get(f"/api/v1/clients/{ida}").json()["hair"] == "grey"
        again = client.post(f"/clients/{ida}", data=stale)  # the same stale version
        assert again.status_code == 409
        assert client.get(f"/api/v1/clients/{ida}").json()["hair"] == "grey"
        # A kept photo that is not base64: the photo's message, no 500.
        form = _page_form(client, ida)
        answer = client.post(f"/clients/{ida}", data={**form, "photo_kept": "abc"})
        assert answer.status_code == 422
        assert 'id="err-photo" role="alert"' in answer.text
        # Walter is being searched for: his record cannot be deleted now.
        reason = {"csrf": csrf, "reason": "duplicate"}
        answer = client.post(f"/clients/{seeded.client_id}/delete", data=reason,
                             follow_redirects=False)  # fmt: skip
        assert "searched for now" in unquote(answer.headers["location"])
        assert client.get(f"/api/v1/clients/{seeded.client_id}").status_code == 200
        # A clinician saves health detail from the page (the rest of the form untouched).
        csrf = login(client, "clinician")
        form = _page_form(client, ida)
        form["approach_and_calm"] = "sit beside her, do not stand over"
        answer = client.post(f"/clients/{ida}", data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        read = client.get(f"/api/v1/clients/{ida}?reason=care%20plan").json()
        assert read["approach_and_calm"] == "sit beside her, do not stand over"
        assert len(read["caregivers"]) == 5
    app.state.safetynet.engine.dispose()
