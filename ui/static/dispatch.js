// The dispatcher's live map: every layer is drawn from the live socket's messages.
// Text from the server is only ever set with textContent (never innerHTML).
"use strict";
(() => {
  const root = document.getElementById("search");
  const searchId = root.dataset.searchId;
  const map = window[root.dataset.mapName];
  const BEARING_M = 3000, FADE_S = 900;
  const layers = {
    track: L.layerGroup().addTo(map), fix: L.layerGroup().addTo(map), bearings: L.layerGroup().addTo(map),
    receivers: L.layerGroup().addTo(map), heard: L.layerGroup().addTo(map), silent: L.layerGroup().addTo(map),
    lkp: L.layerGroup().addTo(map), prob: L.layerGroup().addTo(map), guide: L.layerGroup().addTo(map),
  };
  L.control.layers(null, {
    "Fix and ellipse": layers.fix, "Track": layers.track, "Bearings": layers.bearings,
    "Teams and vehicles": layers.receivers, "Heard here": layers.heard, "Not heard here": layers.silent,
    "Last known point": layers.lkp, "Probability (heat)": layers.prob, "Next listening points": layers.guide,
  }, { collapsed: false }).addTo(map);
  let bearings = [], receivers = {}, track = [], fixCount = 0, snapshotSeen = false;

  function label(text) { const s = document.createElement("span"); s.textContent = text; return s; }
  function ageS(t) { return Math.max(0, (Date.now() - Date.parse(t)) / 1000); }
  // Times as the agency's wall clock (its zone from the server; the browser's own when unknown).
  const zoneOpts = root.dataset.zone ? { timeZone: root.dataset.zone } : {};
  function clock(t, seconds) {
    if (!t) return "";
    const d = new Date(t);
    if (Number.isNaN(d.getTime())) return "";
    return d.toLocaleTimeString("en-GB", { ...zoneOpts, hour: "2-digit", minute: "2-digit", ...(seconds ? { second: "2-digit" } : {}) });
  }
  const zoneName = root.dataset.zoneName || "";
  function ago(t) { const s = Math.round(ageS(t)); return s < 2 ? "now" : s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`; }

  function drawBearings() {
    layers.bearings.clearLayers();
    for (const b of bearings) {
      const end = Geo.destination(b.lat_deg, b.lon_deg, b.bearing_deg, BEARING_M);
      const opacity = Math.max(0.15, 1 - ageS(b.t) / FADE_S);
      const colour = Geo.colour(b.receiver_id);
      const line = L.polyline([[b.lat_deg, b.lon_deg], end], { color: colour, weight: 3, opacity, className: "bearing-line" });
      line.bindTooltip(label(`${b.receiver_id} ${b.bearing_deg.toFixed(0)}° ±${b.sigma_deg.toFixed(0)}° (${b.method})`));
      line.addTo(layers.bearings);
      L.circleMarker([b.lat_deg, b.lon_deg], { radius: 3, color: colour, opacity }).addTo(layers.bearings);
    }
    document.getElementById("bearing-count").textContent = String(bearings.length);
  }

  function drawFix(fix) {
    layers.fix.clearLayers();
    if (!fix) return;
    L.polygon(Geo.ellipse(fix), { color: "#c0392b", weight: 2, fillOpacity: 0.12, className: "fix-ellipse" }).addTo(layers.fix);
    L.circleMarker([fix.lat_deg, fix.lon_deg], { radius: 7, color: "#fff", weight: 2, fillColor: "#c0392b", fillOpacity: 1, className: "fix-marker" })
      .bindTooltip(label("Estimated position")).addTo(layers.fix);
    document.getElementById("fix-none").hidden = true;
    document.getElementById("fix-info").hidden = false;
    document.getElementById("fix-latlon").textContent = `${fix.lat_deg.toFixed(5)}, ${fix.lon_deg.toFixed(5)}`;
    const e = fix.ellipse95;
    document.getElementById("fix-ellipse").textContent = `${e.semi_major_m.toFixed(0)} × ${e.semi_minor_m.toFixed(0)} m, axis ${e.orientation_deg.toFixed(0)}°`;
    document.getElementById("fix-time").textContent = `${clock(fix.t, true)} ${zoneName}`;
    const nb = fix.n_bearings, np = fix.n_pulses;
    document.getElementById("fix-basis").textContent = `${nb} bearing${nb === 1 ? "" : "s"} and ${np} pulse${np === 1 ? "" : "s"}`;
  }

  function drawTrack() {
    layers.track.clearLayers();
    if (track.length > 1) L.polyline(track.map(p => [p[0], p[1]]), { color: "#c0392b", weight: 2, dashArray: "4 4" }).addTo(layers.track);
  }

  function drawReceivers() {
    layers.receivers.clearLayers();
    const body = document.querySelector("#receivers tbody");
    body.replaceChildren();
    for (const r of Object.values(receivers)) {
      const colour = Geo.colour(r.receiver_id);
      if (r.trail && r.trail.length > 1) L.polyline(r.trail, { color: colour, weight: 2, opacity: 0.6 }).addTo(layers.receivers);
      if (r.lat_deg != null) {
        L.circleMarker([r.lat_deg, r.lon_deg], { radius: 6, color: colour, fillColor: "#fff", fillOpacity: 1, weight: 3 })
          .bindTooltip(label(r.receiver_id + (r.team ? ` (${r.team})` : "")), { permanent: true, direction: "right", className: "rx-label" })
          .addTo(layers.receivers);
      }
      const tr = document.createElement("tr");
      const cells = [r.receiver_id, r.team || "", r.gps_fix === false ? "no fix" : r.gps_fix ? "ok" : "?",
        r.clipping ? "CLIP" : r.clipping === false ? "ok" : "?", r.last_report_t ? ago(r.last_report_t) : "—"];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
      body.appendChild(tr);
    }
  }

  function addHeard(h) {
    const rssi = h[2];
    const colour = rssi > -90 ? "#d35400" : rssi > -105 ? "#f39c12" : "#f1c40f";
    L.circleMarker([h[0], h[1]], { radius: 3, color: colour, weight: 1, fillOpacity: 0.7 }).addTo(layers.heard);
  }
  function addSilence(s) { L.circleMarker([s[0], s[1]], { radius: 5, color: "#7f8c8d", weight: 1, fill: false }).addTo(layers.silent); }

  const timeline = document.getElementById("timeline");
  let lastLoggedFix = null;
  function addEvent(e) {
    const li = document.createElement("li"), t = document.createElement("time");
    t.textContent = clock(e.at, true);
    li.appendChild(t);
    let text = e.kind;
    const b = e.body || {};
    if (e.kind === "note") text = `Note: ${b.text}`;
    else if (e.kind === "assignment") text = `Team ${b.team}: ${(b.receiver_ids || []).join(", ")}`;
    else if (e.kind === "status") text = `Search ${b.from} → ${b.to}`;
    else if (e.kind === "link") text = `Linked report ${b.missing_person_report} (${b.agency})`;
    else if (e.kind === "fix") {
      // A fix goes into the log when it is news (the first, a move of 100 m, or two minutes
      // since the last logged): the live box shows every one, the log keeps the teams' events.
      const at = Date.parse(e.at || "") || 0, last = lastLoggedFix;
      const moved = last && b.lat_deg != null ? Geo.distance(last.lat, last.lon, b.lat_deg, b.lon_deg) : Infinity;
      if (last && moved < 100 && at - last.at < 120000) return;
      lastLoggedFix = { at, lat: b.lat_deg, lon: b.lon_deg };
      text = `Fix ±${(b.ellipse95 || {}).semi_major_m | 0} m`;
    }
    else if (e.kind === "heard") { text = `${b.by} heard the bracelet`; L.circleMarker([b.lat_deg, b.lon_deg], { radius: 8, color: "#d35400", weight: 3, fill: false }).addTo(layers.heard); }
    else if (e.kind === "bearing") text = `Bearing ${b.bearing_deg}° from ${b.receiver_id}`;
    li.appendChild(document.createTextNode(text));
    timeline.prepend(li);
    while (timeline.children.length > 300) timeline.lastChild.remove();
  }

  function snapshot(s) {
    for (const k of ["track", "fix", "bearings", "receivers", "heard", "silent", "lkp"]) layers[k].clearLayers();
    const lkp = s.last_known;
    L.circleMarker([lkp.lat_deg, lkp.lon_deg], { radius: 8, color: "#2c3e50", weight: 3, fillColor: "#fff", fillOpacity: 1 })
      .bindTooltip(label(`Last known point, ${clock(lkp.t)} ${zoneName}`)).addTo(layers.lkp);
    bearings = s.bearings; track = s.track; receivers = {};
    for (const r of s.receivers) receivers[r.receiver_id] = r;
    s.heard.forEach(addHeard); s.silences.forEach(addSilence);
    fixCount = track.length;
    document.getElementById("fix-count").textContent = String(fixCount);
    drawBearings(); drawTrack(); drawFix(s.fix); drawReceivers();
    if (!snapshotSeen && s.fix) map.setView([s.fix.lat_deg, s.fix.lon_deg], map.getZoom());
    snapshotSeen = true;
  }

  function onMessage(m) {
    if (m.type === "batch") { m.messages.forEach(onMessage); return; }
    if (m.type === "snapshot") return snapshot(m);
    if (m.type === "fix") {
      track.push([m.fix.lat_deg, m.fix.lon_deg, m.fix.t]);
      fixCount += 1;
      document.getElementById("fix-count").textContent = String(fixCount);
      drawFix(m.fix); drawTrack();
      return;
    }
    if (m.type === "event") return addEvent(m.event);
    if (m.type === "ended") { document.getElementById("live-state").textContent = "search ended"; return; }
    if (m.type !== "report") return;
    const r = m.report;
    const rx = receivers[r.receiver_id] || (receivers[r.receiver_id] = { receiver_id: r.receiver_id, trail: [] });
    if (m.receiver) Object.assign(rx, m.receiver);
    else if (r.lat_deg != null) { rx.lat_deg = r.lat_deg; rx.lon_deg = r.lon_deg; rx.last_report_t = r.t; rx.trail.push([r.lat_deg, r.lon_deg]); }
    if (r.kind === "bearing") { bearings.push(r); if (bearings.length > 100) bearings.shift(); drawBearings(); addEvent({ at: r.t, kind: "bearing", body: r }); }
    else if (r.kind === "pulse" && r.lat_deg != null) addHeard([r.lat_deg, r.lon_deg, r.rssi_dbm]);
    else if (r.kind === "silence") addSilence([r.lat_deg, r.lon_deg]);
    scheduleReceivers();
  }
  let pending = false;
  function scheduleReceivers() { if (!pending) { pending = true; setTimeout(() => { pending = false; drawReceivers(); }, 1000); } }
  setInterval(drawBearings, 10000);  // fade with age

  function advice(g) {
    return g.mode === "close in"
      ? `close in: ${Math.round(g.p_near * 100)} % of the probability within 100 m`
      : `listen there: ${Math.round(g.p_detect * 100)} % chance to hear`;
  }
  async function refreshProbability() {
    try {
      const r = await fetch(`/api/v1/searches/${searchId}/probability`);
      if (!r.ok) return;
      const m = await r.json();
      layers.prob.clearLayers();
      L.imageOverlay(m.png, m.bounds, { opacity: 0.75, interactive: false }).addTo(layers.prob);
      document.getElementById("prob-areas").textContent =
        `Half the probability lies in ${m.area50_km2.toFixed(2)} km², 90 % in ${m.area90_km2.toFixed(2)} km²` + (m.as_of ? ` (as of ${clock(m.as_of, true)} ${zoneName})` : "");
      layers.guide.clearLayers();
      const list = document.getElementById("guidance");
      list.replaceChildren();
      for (const g of m.guidance) {
        const rx = receivers[g.receiver_id];
        const colour = Geo.colour(g.receiver_id);
        if (rx && rx.lat_deg != null) L.polyline([[rx.lat_deg, rx.lon_deg], [g.lat_deg, g.lon_deg]], { color: colour, weight: 2, dashArray: "2 6" }).addTo(layers.guide);
        L.circleMarker([g.lat_deg, g.lon_deg], { radius: 6, color: colour, weight: 2, fill: false })
          .bindTooltip(label(`${g.receiver_id}: ${advice(g)}`)).addTo(layers.guide);
        const li = document.createElement("li");
        li.textContent = `${g.receiver_id}${g.team ? " (" + g.team + ")" : ""}: go to ${g.lat_deg.toFixed(5)}, ${g.lon_deg.toFixed(5)} — ${advice(g)}`;
        list.appendChild(li);
      }
    } catch (e) { /* the next refresh tries again */ }
  }
  refreshProbability();
  setInterval(refreshProbability, 15000);

  fetch(`/api/v1/searches/${searchId}/events?limit=200`).then(r => r.ok ? r.json() : []).then(es => es.forEach(addEvent));
  Geo.live(searchId, onMessage, s => { document.getElementById("live-state").textContent = s; });

  function wire(id, build, url) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const err = document.getElementById("action-error");
      err.textContent = "";
      try { await Geo.post(url(), build(new FormData(form))); form.reset(); }
      catch (e) { err.textContent = e.message; }
    });
  }
  const base = `/api/v1/searches/${searchId}`;
  const words = s => (s || "").split(/[\s,]+/).filter(Boolean);
  wire("note-form", f => ({ text: f.get("text") }), () => `${base}/notes`);
  wire("team-form", f => ({ name: f.get("name"), receiver_ids: words(f.get("receiver_ids")), members: words(f.get("members")) }), () => `${base}/teams`);
  wire("mp-form", f => ({ agency: f.get("agency"), report_number: f.get("report_number"), ncic_category: f.get("ncic_category"), entered_in_ncic: f.get("entered_in_ncic") === "on" }), () => `${base}/missing-person-reports`);
  wire("co-form", f => ({ encounter_on: f.get("encounter_on"), kind: f.get("kind"), clinician: f.get("clinician"), outcome: f.get("outcome") || null }), () => `${base}/co-response`);
  const found = document.getElementById("found-form");
  if (found) found.addEventListener("submit", async ev => {
    ev.preventDefault();
    const err = document.getElementById("action-error");
    try {
      const view = await (await fetch(base)).json();
      const at = track.length ? track[track.length - 1] : [view.last_known.lat_deg, view.last_known.lon_deg];
      await Geo.post(`${base}/status`, { status: "found", version: view.version, found: { lat_deg: at[0], lon_deg: at[1], condition: new FormData(found).get("condition") } });
      location.href = "/";
    } catch (e) { err.textContent = e.message; }
  });
})();
