"""A family's home page says at once that a search for their loved one is under way, and says
nothing else of the search; another family sees nothing of it."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.ui_support import login, seed, settings_for
from ui.app import create_app

HTML = {"accept": "text/html"}


def test_the_family_sees_that_a_search_is_under_way(db_url: str, tmp_path: Path) -> None:
    seeded = seed(db_url)  # Walter Brown, his family's login "family", an active search
    app = create_app(settings_for(tmp_path, db_url))
    with TestClient(app) as client:
        login(client, "family")
        page = client.get("/", headers=HTML).text
        assert "A search for Walter Brown is under way" in page
        assert "search under way" in page
        assert "call 911" in page
        assert f"/searches/{seeded.search_id}" not in page  # the search's map is not theirs
        # Once the search is closed, the banner goes.
        with TestClient(app) as other:  # another family, while the search is active
            login(other, "family2")
            assert "under way" not in other.get("/", headers=HTML).text
        csrf = login(client, "dispatcher")
        version = client.get(f"/api/v1/searches/{seeded.search_id}").json()["version"]
        closed = client.post(f"/api/v1/searches/{seeded.search_id}/status",
                             json={"status": "closed", "version": version},
                             headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert closed.status_code == 200
        login(client, "family")
        page = client.get("/", headers=HTML).text
        assert "is under way" not in page
        assert "Walter" in page
    app.state.safetynet.engine.dispose()
