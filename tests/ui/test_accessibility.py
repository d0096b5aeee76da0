"""WCAG 2.1 AA on every page, checked by axe-core (4.x, carried by ``axe-playwright-python``) in
Debian's chromium, on a desktop and on a phone, under the pages' own Content-Security-Policy.

A serious or critical violation fails the test; lesser ones are printed. Each page is checked in
the state a person meets it: the dispatcher's map with a fix on it, the team page with an
estimate, forms with their errors showing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

from tests.ui_support import (
    ARTIFACTS,
    PASSWORD,
    fed_server,
    sign_in,
)

SHOTS = ARTIFACTS / "screenshots" / "accessibility"
AXE = Axe()
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
         "resultTypes": ["violations"]}  # fmt: skip
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running server with an active search being fed its receivers' reports."""
    with fed_server(tmp_path_factory.mktemp("a11y"), 300, speed=20.0) as live:
        yield live


def _pages(seeded: Any) -> list[tuple[str, str | None, str, str | None]]:
    """(name, user, path, a selector to wait for) for every page a person meets."""
    client, search = seeded.client_id, seeded.search_id
    return [
        ("login", None, "/login", None),
        ("login-error", None, "/login?next=/", None),
        ("home-dispatcher", "dispatcher", "/", "#open-search"),
        ("home-family", "family", "/", None),
        ("home-searcher", "team1", "/", None),
        ("home-admin", "admin", "/", None),
        ("program", "staff", "/program", None),
        ("home-alerts", "dispatcher", "/home-alerts", None),
        ("enrol-family", "family", "/clients/new", "form"),
        ("client-family", "family", f"/clients/{client}", "form"),
        ("client-admin", "admin", f"/clients/{client}", "form"),
        ("map-dispatcher", "dispatcher", f"/searches/{search}", "#fix-info:not([hidden])"),
        ("team-page", "team1", f"/searches/{search}/team", None),
        ("not-found", "dispatcher", "/clients/does-not-exist", None),
        ("refused", "family2", f"/searches/{search}", None),
    ]


def _serious(results: dict[str, Any]) -> list[str]:
    out = []
    for v in results["violations"]:
        if v["impact"] in ("serious", "critical"):
            where = "; ".join(" ".join(n["target"]) for n in v["nodes"][:4])
            out.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])}): {v['help']} at {where}")
    return out


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_page_has_no_serious_or_critical_violation(browser: Any, live: dict[str, Any],
                                                         screen: str) -> None:  # fmt: skip
    base, seeded = live["base"], live["seeded"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    found: dict[str, list[str]] = {}
    minor: dict[str, list[str]] = {}
    contexts: dict[str | None, Any] = {}
    try:
        for name, user, path, ready in _pages(seeded):
            if user not in contexts:
                contexts[user] = browser.new_context(viewport=SCREENS[screen])
                if user:
                    sign_in(contexts[user].new_page(), base, user)
            page = contexts[user].new_page()
            page.goto(f"{base}{path}")
            if name == "login-error":
                page.fill('input[name="username"]', "nobody")
                page.fill('input[name="password"]', "wrong password")
                page.click('button[type="submit"]')
                page.wait_for_load_state()
            if ready:
                page.wait_for_selector(ready, timeout=30000)
            page.screenshot(path=str(SHOTS / f"{name}-{screen}.png"))
            results = AXE.run(page, options=RULES).response
            assert results["testEngine"]["version"].startswith("4."), "axe-core did not run"
            if bad := _serious(results):
                found[name] = bad
            minor[name] = [f"{v['id']} ({v['impact']})" for v in results["violations"]
                           if v["impact"] not in ("serious", "critical")]  # fmt: skip
            page.close()
    finally:
        for c in contexts.values():
            c.close()
    print({k: v for k, v in minor.items() if v})
    assert not found, "\n".join(f"{page}: {v}" for page, vs in found.items() for v in vs)


def _focused(page: Any) -> Any:
    return page.evaluate(
        """() => {
          const e = document.activeElement, s = getComputedStyle(e), r = e.getBoundingClientRect();
          return { name: e.name || e.id || e.textContent.trim().slice(0, 40), tag: e.tagName,
                   outline: parseFloat(s.outlineWidth), style: s.outlineStyle,
                   visible: r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight && r.width > 0 };
        }"""
    )


def test_the_keyboard_alone_logs_in_and_reaches_the_open_search_form(
    browser: Any, live: dict[str, Any]
) -> None:
    context = browser.new_context(viewport=SCREENS["phone"])
    page = context.new_page()
    page.goto(f"{live['base']}/login")
    # The login form takes the keys at once (autofocus lands once the page has loaded).
    page.wait_for_function("document.activeElement && document.activeElement.name === 'username'",
                           timeout=10_000)  # fmt: skip
    page.keyboard.type("dispatcher")
    page.keyboard.press("Tab")
    assert _focused(page)["name"] == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/$"))
    page.keyboard.press("Tab")
    first = _focused(page)
    assert first["name"].startswith("Skip to the page")  # a skip link, shown when focused
    assert first["visible"]
    names = []
    for _ in range(40):
        page.keyboard.press("Tab")
        f = _focused(page)
        assert f["outline"] >= 2, f  # every stop shows the focus ring
        assert f["style"] != "none", f
        names.append(f["name"])
        if f["name"] == "client_id":
            break
    assert names[-1] == "client_id"
    order: list[str] = []
    for _ in range(12):  # a date-time field takes one stop per part (month, day, ... AM/PM)
        page.keyboard.press("Tab")
        name = _focused(page)["name"]
        if not order or order[-1] != name:
            order.append(name)
        if order[-1] == "clothing":
            break
    assert order == ["place", "lat_deg", "lon_deg", "last_seen", "clothing"]
    context.close()


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_family_sees_the_search_under_way_and_nothing_clinical(
    browser: Any, live: dict[str, Any], screen: str
) -> None:
    base, seeded = live["base"], live["seeded"]
    context = browser.new_context(viewport=SCREENS[screen])
    page = context.new_page()
    sign_in(page, base, "family")
    box = page.locator(".search-under-way")
    assert box.is_visible()
    words = box.inner_text()
    assert "A search for Walter Brown is under way" in words, words
    assert "911" in words, words
    assert "search under way" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "screenshots" / f"family-home-{screen}.png"))
    page.goto(f"{base}/clients/{seeded.client_id}")
    page.wait_for_selector("#on-file")
    text = page.inner_text("main")
    # What the family wrote is on file, said so, and not shown back (seed: approach and triggers).
    assert "On file, visible to dispatchers and clinicians" in text, text[:400]
    fields = page.eval_on_selector_all("textarea, input", "els => els.map(e => e.value)")
    assert not {"speak softly", "sirens"} & set(fields)
    assert "speak softly" not in page.content()
    assert "sirens" not in page.content()
    # The search's map is not theirs: a page in words, not JSON.
    answer = page.goto(f"{base}/searches/{seeded.search_id}")
    assert answer is not None
    assert answer.status == 403
    assert "{" not in page.inner_text("main")
    context.close()
