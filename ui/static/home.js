"use strict";
// Open a search from the home page: checked here first (the server checks again), the time
// typed is the agency's wall clock (the server reads an offset-less time in its zone), and a
// warning about the bracelet is shown before the dispatcher goes to the map.
(() => {
  const form = document.getElementById("open-search");
  if (!form) return;
  const err = document.getElementById("open-search-error");
  // A place typed as a USNG reference (or "lat, lon") fills the two degree fields; typing in
  // those fields instead clears it, so the form never holds two different places.
  const place = document.getElementById("open-search-place"), read = document.getElementById("open-search-place-read");
  const latField = form.elements.lat_deg, lonField = form.elements.lon_deg;
  function readPlace() {
    const text = place.value.trim();
    place.setCustomValidity("");
    if (!text) { read.textContent = ""; return true; }
    try {
      const p = Where.parsePlace(text);
      latField.value = p.lat.toFixed(6); lonField.value = p.lon.toFixed(6);
      read.textContent = `= ${Where.position(p.lat, p.lon)}` + (p.size_m > 1 ? ` (centre of the ${Where.distance(p.size_m)} square)` : "");
      return true;
    } catch (e) {
      read.textContent = `Not a place: ${e.message}`;
      place.setCustomValidity(e.message);
      return false;
    }
  }
  place.addEventListener("input", readPlace);
  for (const field of [latField, lonField]) field.addEventListener("input", () => { place.value = ""; read.textContent = ""; });
  function problem(f) {
    const lat = Number(f.get("lat_deg")), lon = Number(f.get("lon_deg"));
    if (f.get("lat_deg") === "" || !(lat >= -90 && lat <= 90)) return "The latitude must be a number within -90..90 (such as 42.3601).";
    if (f.get("lon_deg") === "" || !(lon >= -180 && lon <= 180)) return "The longitude must be a number within -180..180 (such as -71.0589).";
    if (!f.get("last_seen")) return "Say when they were last seen.";
    if ((f.get("clothing") || "").length > 2000) return `What they were wearing is ${f.get("clothing").length} characters long; it can be at most 2000.`;
    return "";
  }
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    if (!readPlace()) { err.textContent = `The last known point: ${place.validationMessage}.`; return; }
    const f = new FormData(form);
    err.textContent = problem(f);
    if (err.textContent) return;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const s = await Geo.post("/api/v1/searches", {
        client_id: f.get("client_id"), lat_deg: Number(f.get("lat_deg")), lon_deg: Number(f.get("lon_deg")),
        last_seen: f.get("last_seen").length === 16 ? f.get("last_seen") + ":00" : f.get("last_seen"),
        clothing: f.get("clothing") || null });
      const url = `/searches/${s.id}`;
      if (s.warnings && s.warnings.length) {
        const box = document.getElementById("open-search-warning"), list = document.getElementById("open-search-warnings");
        list.replaceChildren(...s.warnings.map(w => { const li = document.createElement("li"); li.textContent = w; return li; }));
        document.getElementById("open-search-go").href = url;
        form.hidden = true;
        box.hidden = false;
        box.scrollIntoView();
        return;
      }
      location.href = url;
    } catch (e) { err.textContent = e.message; button.disabled = false; }
  });
})();
