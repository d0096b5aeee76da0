"use strict";
(() => {
  const form = document.getElementById("open-search");
  if (!form) return;
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = new FormData(form), err = document.getElementById("open-search-error");
    err.textContent = "";
    try {
      const s = await Geo.post("/api/v1/searches", {
        client_id: f.get("client_id"), lat_deg: Number(f.get("lat_deg")), lon_deg: Number(f.get("lon_deg")),
        last_seen: f.get("last_seen") + ":00Z", clothing: f.get("clothing") || null });
      location.href = `/searches/${s.id}`;
    } catch (e) { err.textContent = e.message; }
  });
})();
