// The dispatcher's live map: every layer is drawn from the live socket's messages.
// Text from the server is only ever set with textContent (never innerHTML).
"use strict";
(() => {
  const root = document.getElementById("search");
  const searchId = root.dataset.searchId;
  const map = window[root.dataset.mapName];
  const canWrite = root.dataset.canWrite === "yes";
  const BEARING_M = 3000, FADE_S = 900;
  const STOPPED_REPORTING_S = 120;  // a receiver that reported and then sent nothing this long
  const SILENCE_CHECK_S = 5;  // how often the page looks for receivers that stopped reporting
  const PHONE = window.matchMedia("(max-width: 640px)");

  // Panes: the heat lies just above the street map, under every symbol; the fix, its ellipse and
  // the track lie above the other symbols (drawn as SVG, so the fix is an element one can find,
  // hover and click; the canvas below takes the other symbols' events).
  map.createPane("heatPane").style.zIndex = "350";
  map.createPane("fixPane").style.zIndex = "450";
  const fixRenderer = L.svg({ pane: "fixPane" });
  const onTop = { pane: "fixPane", renderer: fixRenderer };
  map.createPane("trackPane").style.zIndex = "445";  // the track under the fix it leads to
  const underFix = { pane: "trackPane", renderer: L.svg({ pane: "trackPane" }) };

  // Every symbol's look, in one place: the map draws with these and the legend's swatches are
  // drawn from the same objects. `legend` names the legend's row for the symbol.
  const HEARD = [  // signal strength bands for "heard here"
    { key: "heard-strong", above_dbm: -90, color: "#d35400", words: "strong (above −90 dBm)" },
    { key: "heard-medium", above_dbm: -105, color: "#f39c12", words: "medium (−90 to −105 dBm)" },
    { key: "heard-weak", above_dbm: -Infinity, color: "#f1c40f", words: "weak (below −105 dBm)" },
  ];
  const S = {
    fixHalo: { legend: "fix", radius: 12, color: "#1d2330", weight: 1, fillColor: "#fff", fillOpacity: 0.95, interactive: false, ...onTop },
    fix: { legend: "fix", radius: 7, color: "#fff", weight: 2, fillColor: "#c0392b", fillOpacity: 1, className: "fix-marker", ...onTop },
    ellipseCasing: { legend: "ellipse", color: "#fff", weight: 5, opacity: 0.8, fill: false, interactive: false, ...onTop },
    ellipse: { legend: "ellipse", color: "#c0392b", weight: 2, fillOpacity: 0.1, interactive: false, className: "fix-ellipse", ...onTop },
    trackCasing: { legend: "track", color: "#fff", weight: 5, opacity: 0.8, interactive: false, ...underFix },
    track: { legend: "track", color: "#c0392b", weight: 2, opacity: 0.7, dashArray: "3 6", interactive: false, ...underFix },
    smoothedCasing: { legend: "smoothed", color: "#fff", weight: 7, opacity: 0.85, interactive: false, ...underFix },
    smoothed: { legend: "smoothed", color: "#8e1b10", weight: 4, opacity: 0.95, className: "smoothed-trail", ...underFix },
    bearing: c => ({ legend: "bearing", color: c, weight: 3 }),
    bearingFoot: c => ({ legend: "bearing", radius: 3, color: c }),
    receiver: c => ({ legend: "receiver", radius: 6, color: c, fillColor: "#fff", fillOpacity: 1, weight: 3 }),
    trail: c => ({ legend: "receiver", color: c, weight: 2, opacity: 0.6 }),
    heard: h => ({ legend: h.key, radius: 3, color: h.color, weight: 1, fillOpacity: 0.7 }),
    heardByEar: { legend: "heard-ear", radius: 8, color: "#d35400", weight: 3, fill: false },
    silent: { legend: "silent", radius: 5, color: "#7f8c8d", weight: 1, fill: false },
    lkp: { legend: "lkp", radius: 8, color: "#2c3e50", weight: 3, fillColor: "#fff", fillOpacity: 1 },
    guide: c => ({ legend: "guide", radius: 6, color: c, weight: 2, fill: false }),
    guideLine: c => ({ legend: "guide", color: c, weight: 2, dashArray: "2 6" }),
  };
  const HEAT_OPACITY = 0.7;  // over the image's own alpha (40-210 of 255): streets show through

  const layers = {
    track: L.layerGroup().addTo(map), fix: L.layerGroup().addTo(map), bearings: L.layerGroup().addTo(map),
    receivers: L.layerGroup().addTo(map), heard: L.layerGroup().addTo(map), silent: L.layerGroup().addTo(map),
    lkp: L.layerGroup().addTo(map), prob: L.layerGroup().addTo(map), guide: L.layerGroup().addTo(map),
  };
  const NAMES = {
    fix: "Fix and ellipse", track: "Track", bearings: "Bearings", receivers: "Teams and vehicles",
    heard: "Heard here", silent: "Not heard here", lkp: "Last known point", prob: "Probability (heat)",
    guide: "Next listening points",
  };
  const overlays = {};
  for (const [k, name] of Object.entries(NAMES)) overlays[name] = layers[k];
  const layerControl = L.control.layers(null, overlays, { collapsed: true }).addTo(map);
  let bearings = [], receivers = {}, track = [], smoothed = [], fixCount = 0, snapshotSeen = false, ended = false, lastFix = null;

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
  function later(a, b) { return !a ? b : !b ? a : Date.parse(b) > Date.parse(a) ? b : a; }

  // --- the layer list: starts as an icon, opens on click, tap or Enter; Escape closes it ---------
  (function layerList() {
    const box = layerControl.getContainer();
    const toggle = box.querySelector(".leaflet-control-layers-toggle");
    toggle.setAttribute("aria-label", "Map layers: show or hide what the map draws");
    toggle.title = "Map layers";
    const section = box.querySelector(".leaflet-control-layers-list");
    section.setAttribute("aria-label", "Map layers");
    const state = () => toggle.setAttribute("aria-expanded", String(box.classList.contains("leaflet-control-layers-expanded")));
    new MutationObserver(state).observe(box, { attributes: true, attributeFilter: ["class"] });
    state();
    box.addEventListener("keydown", ev => {
      if (ev.key !== "Escape") return;
      layerControl.collapse();
      toggle.focus();
    });
    // Enter (Leaflet opens the list) or Space opens it and takes the keyboard into it; leaving it
    // by Tab closes it (focus lost to nowhere, as when the toggle hides itself, does not).
    toggle.addEventListener("keydown", ev => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault();
      layerControl.expand();
      const first = section.querySelector("input");
      if (first) first.focus();
    });
    box.addEventListener("focusout", ev => { if (ev.relatedTarget && !box.contains(ev.relatedTarget)) layerControl.collapse(); });
  })();

  // --- the legend: every symbol the map draws, drawn the same way ----------------------------
  const SVGNS = "http://www.w3.org/2000/svg";
  // A Leaflet path's look resolved as Leaflet's renderers resolve it (its defaults filled in).
  function look(style, shape) {
    const base = shape === "circle" ? L.CircleMarker.prototype.options : shape === "area" ? L.Polygon.prototype.options : L.Polyline.prototype.options;
    const o = { ...L.Path.prototype.options, ...base, ...style };
    return {
      stroke: o.stroke ? o.color : "none", width: o.weight, opacity: o.opacity, dash: o.dashArray || "",
      fill: o.fill ? (o.fillColor || o.color) : "none", fillOpacity: o.fill ? o.fillOpacity : 0, radius: o.radius,
    };
  }
  function paint(el, lk) {
    el.setAttribute("stroke", lk.stroke);
    el.setAttribute("stroke-width", String(lk.width));
    el.setAttribute("stroke-opacity", String(lk.opacity));
    if (lk.dash) el.setAttribute("stroke-dasharray", lk.dash);
    el.setAttribute("fill", lk.fill);
    el.setAttribute("fill-opacity", String(lk.fillOpacity));
    return el;
  }
  // A swatch: shapes [kind, style] drawn in order, as on the map (kind circle, line or area).
  function swatch(key, shapes) {
    const svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("class", "swatch");
    svg.setAttribute("width", "30");
    svg.setAttribute("height", "26");
    svg.setAttribute("viewBox", "0 0 30 26");
    svg.setAttribute("aria-hidden", "true");
    svg.dataset.legend = key;
    for (const [kind, style] of shapes) {
      const lk = look(style, kind);
      let el;
      if (kind === "circle") {
        el = document.createElementNS(SVGNS, "circle");
        el.setAttribute("cx", "15"); el.setAttribute("cy", "13"); el.setAttribute("r", String(lk.radius));
      } else if (kind === "area") {
        el = document.createElementNS(SVGNS, "ellipse");
        el.setAttribute("cx", "15"); el.setAttribute("cy", "13"); el.setAttribute("rx", "12"); el.setAttribute("ry", "8");
      } else {
        el = document.createElementNS(SVGNS, "line");
        el.setAttribute("x1", "2"); el.setAttribute("y1", "19"); el.setAttribute("x2", "28"); el.setAttribute("y2", "7");
        el.setAttribute("stroke-linecap", "round");
      }
      svg.appendChild(paint(el, lk));
    }
    return svg;
  }
  function heatSwatch(scale) {
    const bar = document.createElement("span");
    bar.className = "swatch heat-swatch";
    bar.dataset.legend = "heat";
    const stops = (scale || []).map(([level, r, g, b, a]) => `rgba(${r}, ${g}, ${b}, ${(a / 255 * HEAT_OPACITY).toFixed(3)}) ${Math.round(level * 100)}%`);
    if (stops.length) bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
    return bar;
  }
  const legend = L.control({ position: "bottomright" });
  const legendBox = L.DomUtil.create("details", "legend");
  const legendRows = document.createElement("div");
  const receiverRows = document.createElement("div");
  let heatRow = null;
  legend.onAdd = () => legendBox;
  function row(layer, swatches, words, cls) {
    const r = document.createElement("div");
    r.className = "legend-row" + (cls ? ` ${cls}` : "");
    r.dataset.layer = layer;
    for (const s of swatches) r.appendChild(s);
    r.appendChild(label(words));
    return r;
  }
  (function buildLegend() {
    const summary = document.createElement("summary");
    summary.textContent = "Legend";
    legendBox.appendChild(summary);
    legendRows.className = "legend-rows";
    const grey = "#5b6474";
    legendRows.append(
      row("fix", [swatch("fix", [["circle", S.fixHalo], ["circle", S.fix]])], "Estimated position (the fix)"),
      row("fix", [swatch("ellipse", [["area", S.ellipseCasing], ["area", S.ellipse]])], "95 % ellipse: the person is inside, 95 % sure"),
      row("track", [swatch("smoothed", [["line", S.smoothedCasing], ["line", S.smoothed]])], "Likely path of the last minutes (smoothed)"),
      row("track", [swatch("track", [["line", S.trackCasing], ["line", S.track]])], "Track: each live fix so far"),
      row("lkp", [swatch("lkp", [["circle", S.lkp]])], "Last known point"),
      heatRow = row("prob", [heatSwatch(null)], "Probability: pale yellow less likely, red most likely"),
      row("heard", HEARD.map(h => swatch(h.key, [["circle", S.heard(h)]])), "Heard here: strong, medium, weak"),
      row("heard", [swatch("heard-ear", [["circle", S.heardByEar]])], "Heard by a searcher's ear or scanner"),
      row("silent", [swatch("silent", [["circle", S.silent]])], "Not heard here (listened, nothing)"),
      row("bearings", [swatch("bearing-now", [["line", S.bearing(grey)]]), swatch("bearing-old", [["line", { ...S.bearing(grey), opacity: 0.15 }]])],
        `Bearing: a line from the receiver, paler as it ages (${FADE_S / 60} min)`),
      row("receivers", [swatch("receiver-now", [["line", S.trail(grey)], ["circle", S.receiver(grey)]])], "Team or vehicle, with its trail"),
      row("guide", [swatch("guide-now", [["line", S.guideLine(grey)], ["circle", S.guide(grey)]])], "Next listening point for a team"),
    );
    receiverRows.className = "legend-receivers";
    const head = document.createElement("p");
    head.className = "legend-head";
    head.textContent = "Each receiver's colour (its position and trail, bearings, next point):";
    legendBox.append(legendRows, head, receiverRows);
    L.DomEvent.disableClickPropagation(legendBox);
    L.DomEvent.disableScrollPropagation(legendBox);
    legendBox.open = !PHONE.matches;  // a phone's map is small: the legend opens on a tap
    legend.addTo(map);
    const dim = (ev, off) => {
      const key = Object.keys(layers).find(k => layers[k] === ev.layer);
      legendBox.querySelectorAll(`[data-layer="${key}"]`).forEach(r => r.classList.toggle("off", off));
    };
    map.on("overlayadd", ev => dim(ev, false));
    map.on("overlayremove", ev => dim(ev, true));
  })();
  function drawLegendReceivers() {
    receiverRows.replaceChildren();
    for (const r of Object.values(receivers)) {
      const c = Geo.colour(r.receiver_id);
      const line = document.createElement("div");
      line.className = "legend-row legend-receiver";
      line.dataset.layer = "receivers";
      line.dataset.receiver = r.receiver_id;
      line.append(
        swatch(`receiver:${r.receiver_id}`, [["line", S.trail(c)], ["circle", S.receiver(c)]]),
        swatch(`bearing:${r.receiver_id}`, [["line", S.bearing(c)]]),
        swatch(`guide:${r.receiver_id}`, [["line", S.guideLine(c)], ["circle", S.guide(c)]]),
        label(r.receiver_id + (r.team ? ` (${r.team})` : "")),
      );
      receiverRows.appendChild(line);
    }
  }

  // --- alerts ----------------------------------------------------------------------------------
  const base = `/api/v1/searches/${searchId}`;
  const alerts = Alerts.create({
    list: document.getElementById("alerts"), soundButton: document.getElementById("sound-on"),
    base, canAcknowledge: canWrite,
  });
  const person = root.dataset.person || "The person";
  function raiseHeard(t, who) {
    alerts.raise({ key: "heard", kind: "heard", title: "Bracelet heard",
      detail: `${who ? who + " heard it" : "First heard"} at ${clock(t, true)} ${zoneName}`.trim() });
  }
  function raiseFirstFix(fix, t) {
    alerts.raise({ key: "first-fix", kind: "first-fix", title: "First fix",
      detail: `At ${clock(t || fix.t, true)} ${zoneName}, within ±${Where.distance(fix.ellipse95.semi_major_m)} (95 %)`,
      show: () => lastFix && map.setView([lastFix.lat_deg, lastFix.lon_deg], Math.max(map.getZoom(), 16)) });
  }
  function raiseFound(found) {
    const where = found && found.lat_deg != null ? ` at ${Where.position(found.lat_deg, found.lon_deg)}` : "";
    alerts.raise({ key: "found", kind: "found", title: `${person} found`,
      detail: found ? `${clock(found.at)} ${zoneName}${where}: ${found.condition || ""}` : "The search is marked found." });
  }
  // A receiver that was reporting and has sent nothing for STOPPED_REPORTING_S; the alert names
  // its last report, so one silence is one alert and a later silence a new one. How long it has
  // been silent is told by this page's clock from when its last report arrived, not by the
  // receiver's own clock (a receiver running minutes slow would otherwise look silent at every
  // report, each a new alert); only a receiver already quiet when the page opens is timed by
  // its report's time.
  function silentS(r) { return r.arrivedMs == null ? 0 : Math.max(0, (Date.now() - r.arrivedMs) / 1000); }
  function checkSilences() {
    if (ended) return;
    for (const r of Object.values(receivers)) {
      if (!r.last_report_t || r.receiver_id.startsWith("WEB-")) continue;  // a phone reports when typed
      const key = `silent:${r.receiver_id}:${Math.floor(Date.parse(r.last_report_t) / 1000)}`;
      const name = r.receiver_id + (r.team ? ` (${r.team})` : "");
      if (silentS(r) >= STOPPED_REPORTING_S) {
        alerts.raise({ key, kind: "silent", title: `${name} stopped reporting`,
          detail: `No report since ${clock(r.last_report_t, true)} ${zoneName}`.trim(),
          show: () => r.lat_deg != null && map.setView([r.lat_deg, r.lon_deg], Math.max(map.getZoom(), 16)) });
      }
      for (const old of r.silentKeys || []) {
        if (old !== key) alerts.raise({ key: old, kind: "silent", title: `${name} stopped reporting`, resolved: true, update: true,
          detail: `Reporting again since ${clock(r.last_report_t, true)} ${zoneName}`.trim() });
      }
      if (silentS(r) >= STOPPED_REPORTING_S) r.silentKeys = [...new Set([...(r.silentKeys || []), key])];
    }
  }
  setInterval(checkSilences, SILENCE_CHECK_S * 1000);

  // --- the layers ----------------------------------------------------------------------------
  function drawBearings() {
    layers.bearings.clearLayers();
    for (const b of bearings) {
      const end = Geo.destination(b.lat_deg, b.lon_deg, b.bearing_deg, BEARING_M);
      const opacity = Math.max(0.15, 1 - ageS(b.t) / FADE_S);
      const colour = Geo.colour(b.receiver_id);
      const line = L.polyline([[b.lat_deg, b.lon_deg], end], { ...S.bearing(colour), legend: `bearing:${b.receiver_id}`, opacity });
      line.bindTooltip(label(`${b.receiver_id} ${b.bearing_deg.toFixed(0)}° ±${b.sigma_deg.toFixed(0)}° (${b.method}), ${ago(b.t)}`));
      line.addTo(layers.bearings);
      L.circleMarker([b.lat_deg, b.lon_deg], { ...S.bearingFoot(colour), legend: `bearing:${b.receiver_id}`, opacity }).addTo(layers.bearings);
    }
    document.getElementById("bearing-count").textContent = String(bearings.length);
  }

  function fixWords(fix) {
    const e = fix.ellipse95;
    return `Estimated position ${Where.position(fix.lat_deg, fix.lon_deg)}, within ±${Where.distance(e.semi_major_m)} (95 %), as of ${clock(fix.t, true)} ${zoneName}`;
  }
  function drawFix(fix) {
    layers.fix.clearLayers();
    if (!fix) return;
    lastFix = fix;
    const ring = Geo.ellipse(fix);
    L.polygon(ring, S.ellipseCasing).addTo(layers.fix);
    L.polygon(ring, S.ellipse).addTo(layers.fix);
    L.circleMarker([fix.lat_deg, fix.lon_deg], S.fixHalo).addTo(layers.fix);
    L.circleMarker([fix.lat_deg, fix.lon_deg], S.fix)
      .bindTooltip(label("Estimated position")).bindPopup(label(fixWords(fix))).addTo(layers.fix);
    document.getElementById("fix-none").hidden = true;
    document.getElementById("fix-info").hidden = false;
    document.getElementById("fix-latlon").textContent = Where.position(fix.lat_deg, fix.lon_deg);
    const e = fix.ellipse95;
    document.getElementById("fix-ellipse").textContent = `${Where.distance(2 * e.semi_major_m)} long × ${Where.distance(2 * e.semi_minor_m)} wide, long axis ${e.orientation_deg.toFixed(0)}°`;
    document.getElementById("fix-time").textContent = `${clock(fix.t, true)} ${zoneName}`;
    const nb = fix.n_bearings, np = fix.n_pulses;
    document.getElementById("fix-basis").textContent = `${nb} bearing${nb === 1 ? "" : "s"} and ${np} pulse${np === 1 ? "" : "s"}`;
  }

  function drawTrack() {
    layers.track.clearLayers();
    if (track.length < 2) return;
    const points = track.map(p => [p[0], p[1]]);
    L.polyline(points, S.trackCasing).addTo(layers.track);
    L.polyline(points, S.track).addTo(layers.track);
    // The smoothed trail, knowing what came after each moment, is where the person most likely
    // walked; it ends where the live fix is.
    if (smoothed.length < 2) return;
    const path = smoothed.map(p => [p[0], p[1]]);
    if (lastFix) path.push([lastFix.lat_deg, lastFix.lon_deg]);
    L.polyline(path, S.smoothedCasing).addTo(layers.track);
    L.polyline(path, S.smoothed).bindTooltip(label(`Likely path since ${clock(smoothed[0][2], true)} ${zoneName}`.trim()), { sticky: true }).addTo(layers.track);
  }

  function drawReceivers() {
    layers.receivers.clearLayers();
    const body = document.querySelector("#receivers tbody");
    body.replaceChildren();
    for (const r of Object.values(receivers)) {
      const colour = Geo.colour(r.receiver_id);
      const key = `receiver:${r.receiver_id}`;
      if (r.trail && r.trail.length > 1) L.polyline(r.trail, { ...S.trail(colour), legend: key }).addTo(layers.receivers);
      if (r.lat_deg != null) {
        L.circleMarker([r.lat_deg, r.lon_deg], { ...S.receiver(colour), legend: key })
          .bindTooltip(label(r.receiver_id + (r.team ? ` (${r.team})` : "")), { permanent: true, direction: "right", className: "rx-label" })
          .addTo(layers.receivers);
      }
      const tr = document.createElement("tr");
      const quiet = r.last_report_t && !r.receiver_id.startsWith("WEB-") && silentS(r) >= STOPPED_REPORTING_S;
      if (quiet) tr.className = "quiet";
      const cells = [r.receiver_id, r.team || "", r.gps_fix === false ? "no fix" : r.gps_fix ? "ok" : "?",
        r.clipping ? "CLIP" : r.clipping === false ? "ok" : "?", r.last_report_t ? ago(r.last_report_t) : "—"];
      for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
      if (r.lat_deg != null) {  // where it is, under its name: the grid reference a team reads back
        const at = document.createElement("small");
        at.className = "rx-where";
        at.textContent = Where.usng(r.lat_deg, r.lon_deg) || `${r.lat_deg.toFixed(5)}, ${r.lon_deg.toFixed(5)}`;
        at.title = Where.position(r.lat_deg, r.lon_deg);
        tr.firstChild.append(document.createElement("br"), at);
      }
      body.appendChild(tr);
    }
    drawLegendReceivers();
  }

  function heardBand(rssi) { return HEARD.find(h => rssi > h.above_dbm) || HEARD[HEARD.length - 1]; }
  function addHeard(h) { L.circleMarker([h[0], h[1]], S.heard(heardBand(h[2]))).addTo(layers.heard); }
  function addSilence(s) { L.circleMarker([s[0], s[1]], S.silent).addTo(layers.silent); }

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
    else if (e.kind === "acknowledged") { text = b.text || "Alert acknowledged"; alerts.onEvent(e); }
    else if (e.kind === "fix") {
      // A fix goes into the log when it is news (the first, a move of 100 m, or two minutes
      // since the last logged): the live box shows every one, the log keeps the teams' events.
      const at = Date.parse(e.at || "") || 0, last = lastLoggedFix;
      const moved = last && b.lat_deg != null ? Geo.distance(last.lat, last.lon, b.lat_deg, b.lon_deg) : Infinity;
      if (last && moved < 100 && at - last.at < 120000) return;
      lastLoggedFix = { at, lat: b.lat_deg, lon: b.lon_deg };
      text = `Fix ±${(b.ellipse95 || {}).semi_major_m | 0} m`;
    }
    else if (e.kind === "heard") {
      text = `${b.by} heard the bracelet`;
      L.circleMarker([b.lat_deg, b.lon_deg], S.heardByEar).addTo(layers.heard);
      raiseHeard(e.at, `${b.by}, by ear or scanner,`);
    }
    else if (e.kind === "bearing") text = `Bearing ${b.bearing_deg}° from ${b.receiver_id}`;
    li.appendChild(document.createTextNode(text));
    timeline.prepend(li);
    while (timeline.children.length > 300) timeline.lastChild.remove();
  }

  function snapshot(s) {
    for (const k of ["track", "fix", "bearings", "receivers", "heard", "silent", "lkp"]) layers[k].clearLayers();
    const lkp = s.last_known;
    L.circleMarker([lkp.lat_deg, lkp.lon_deg], S.lkp)
      .bindTooltip(label(`Last known point, ${clock(lkp.t)} ${zoneName}`)).addTo(layers.lkp);
    const old = receivers;
    bearings = s.bearings; track = s.track; smoothed = s.smoothed || []; receivers = {};
    for (const r of s.receivers) {
      const had = old[r.receiver_id] || {};
      const arrivedMs = had.arrivedMs != null && had.last_report_t === r.last_report_t ? had.arrivedMs
        : r.last_report_t ? Date.now() - ageS(r.last_report_t) * 1000 : null;
      receivers[r.receiver_id] = { ...r, silentKeys: had.silentKeys, arrivedMs };
    }
    s.heard.forEach(addHeard); s.silences.forEach(addSilence);
    fixCount = track.length;
    document.getElementById("fix-count").textContent = String(fixCount);
    drawBearings(); drawTrack(); drawFix(s.fix); drawReceivers();
    if (!snapshotSeen && s.fix) map.setView([s.fix.lat_deg, s.fix.lon_deg], map.getZoom());
    snapshotSeen = true;
    // What the search has already been through raises its alerts (once: acknowledged ones stay away).
    const firstHeard = [...s.heard.map(h => h[3]), ...s.bearings.map(b => b.t)].filter(Boolean).sort((a, b) => Date.parse(a) - Date.parse(b))[0];
    if (firstHeard) raiseHeard(firstHeard, null);
    if (s.fix) raiseFirstFix(s.fix, track.length ? track[0][2] : s.fix.t);
    checkSilences();
  }

  async function onEnded() {
    ended = true;
    document.getElementById("live-state").textContent = "search ended";
    try {
      const r = await fetch(base);
      if (!r.ok) return;
      const view = await r.json();
      if (view.status === "found") raiseFound(view.found);
      document.getElementById("live-state").textContent = `search ${view.status}`;
    } catch (e) { /* the page says the search ended */ }
  }

  function onMessage(m) {
    if (m.type === "batch") { m.messages.forEach(onMessage); return; }
    if (m.type === "snapshot") return snapshot(m);
    if (m.type === "fix") {
      track.push([m.fix.lat_deg, m.fix.lon_deg, m.fix.t]);
      fixCount += 1;
      document.getElementById("fix-count").textContent = String(fixCount);
      drawFix(m.fix); drawTrack();
      raiseFirstFix(m.fix, track[0][2]);
      probabilitySoon();
      return;
    }
    if (m.type === "smoothed") { smoothed = m.smoothed || []; drawTrack(); return; }
    if (m.type === "event") return addEvent(m.event);
    if (m.type === "ended") { onEnded(); return; }
    if (m.type !== "report") return;
    const r = m.report;
    const rx = receivers[r.receiver_id] || (receivers[r.receiver_id] = { receiver_id: r.receiver_id, trail: [] });
    if (m.receiver) Object.assign(rx, m.receiver);
    else if (r.lat_deg != null) { rx.lat_deg = r.lat_deg; rx.lon_deg = r.lon_deg; rx.trail.push([r.lat_deg, r.lon_deg]); }
    rx.last_report_t = later(rx.last_report_t, r.t);
    rx.arrivedMs = Date.now();
    if (r.kind === "bearing") {
      bearings.push(r); if (bearings.length > 100) bearings.shift(); drawBearings(); addEvent({ at: r.t, kind: "bearing", body: r });
      raiseHeard(r.t, r.receiver_id);
    }
    else if (r.kind === "pulse") {
      if (r.lat_deg != null) addHeard([r.lat_deg, r.lon_deg, r.rssi_dbm]);
      raiseHeard(r.t, r.receiver_id);
    }
    else if (r.kind === "silence") addSilence([r.lat_deg, r.lon_deg]);
    scheduleReceivers();
  }
  let pending = false;
  function scheduleReceivers() { if (!pending) { pending = true; setTimeout(() => { pending = false; drawReceivers(); }, 1000); } }
  setInterval(drawBearings, 10000);  // fade with age

  function advice(g) {
    return g.mode === "close in"
      ? `close in: ${Math.round(g.p_near * 100)} % of the probability within ${Where.distance(100)}`
      : `listen there: ${Math.round(g.p_detect * 100)} % chance to hear`;
  }
  // The map of where to look follows the fix: asked again on a new fix at most every
  // PROB_AFTER_FIX_S, and every PROB_EVERY_S regardless (the prior spreads with time).
  const PROB_EVERY_S = 15, PROB_AFTER_FIX_S = 5;
  let probAsked = 0, probBusy = false;
  function probabilitySoon() { if (Date.now() - probAsked >= PROB_AFTER_FIX_S * 1000) refreshProbability(); }
  async function refreshProbability() {
    if (ended || probBusy) return;
    probAsked = Date.now();
    probBusy = true;
    try {
      const r = await fetch(`${base}/probability`);
      if (!r.ok) return;
      const m = await r.json();
      layers.prob.clearLayers();
      L.imageOverlay(m.png, m.bounds, { opacity: HEAT_OPACITY, interactive: false, pane: "heatPane", className: "heat-image", legend: "heat" }).addTo(layers.prob);
      heatRow.replaceChild(heatSwatch(m.scale), heatRow.firstChild);
      document.getElementById("prob-areas").textContent =
        `Half the probability lies in ${Where.area(m.area50_km2)}, 90 % in ${Where.area(m.area90_km2)}` + (m.as_of ? ` (as of ${clock(m.as_of, true)} ${zoneName})` : "");
      layers.guide.clearLayers();
      const list = document.getElementById("guidance");
      list.replaceChildren();
      for (const g of m.guidance) {
        const rx = receivers[g.receiver_id];
        const colour = Geo.colour(g.receiver_id);
        const key = `guide:${g.receiver_id}`;
        if (rx && rx.lat_deg != null) L.polyline([[rx.lat_deg, rx.lon_deg], [g.lat_deg, g.lon_deg]], { ...S.guideLine(colour), legend: key }).addTo(layers.guide);
        L.circleMarker([g.lat_deg, g.lon_deg], { ...S.guide(colour), legend: key })
          .bindTooltip(label(`${g.receiver_id}: ${advice(g)}`)).addTo(layers.guide);
        const li = document.createElement("li");
        li.textContent = `${g.receiver_id}${g.team ? " (" + g.team + ")" : ""}: go to ${Where.position(g.lat_deg, g.lon_deg)} — ${advice(g)}`;
        list.appendChild(li);
      }
    } catch (e) { /* the next refresh tries again */ }
    finally { probBusy = false; }
  }
  refreshProbability();
  setInterval(() => { if (Date.now() - probAsked >= PROB_EVERY_S * 1000 - 500) refreshProbability(); }, 1000);

  fetch(`${base}/events?limit=200`).then(r => r.ok ? r.json() : []).then(es => es.forEach(addEvent));
  if (root.dataset.status === "found") onEnded();
  else if (root.dataset.status === "active") {
    Geo.live(searchId, onMessage, s => { if (!ended) document.getElementById("live-state").textContent = s; });
  } else {
    ended = true;
    document.getElementById("live-state").textContent = `search ${root.dataset.status}`;
  }

  // Each action says under its own button what happened: done (and the form empties) or why not
  // (and what was typed stays).
  function say(form, text, bad) {
    const msg = form.querySelector(".act-msg");
    if (!msg) return;
    msg.textContent = text;
    msg.classList.toggle("error", Boolean(bad));
    msg.classList.toggle("done", !bad && Boolean(text));
  }
  function wire(id, build, url, done) {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      say(form, "");
      const button = form.querySelector("button");
      button.disabled = true;
      try {
        await Geo.post(url(), build(new FormData(form)));
        form.reset();
        say(form, `${done} at ${clock(new Date().toISOString(), true)}.`);
      } catch (e) { say(form, `Not saved: ${e.message}`, true); }
      button.disabled = false;
    });
  }
  const words = s => (s || "").split(/[\s,]+/).filter(Boolean);
  wire("note-form", f => ({ text: f.get("text") }), () => `${base}/notes`, "Added to the log");
  wire("team-form", f => ({ name: f.get("name"), receiver_ids: words(f.get("receiver_ids")), members: words(f.get("members")) }), () => `${base}/teams`, "Team assigned");
  wire("mp-form", f => ({ agency: f.get("agency"), report_number: f.get("report_number"), ncic_category: f.get("ncic_category"), entered_in_ncic: f.get("entered_in_ncic") === "on" }), () => `${base}/missing-person-reports`, "Report linked");
  wire("co-form", f => ({ encounter_on: f.get("encounter_on"), kind: f.get("kind"), clinician: f.get("clinician"), outcome: f.get("outcome") || null }), () => `${base}/co-response`, "Encounter linked");
  const found = document.getElementById("found-form");
  if (found) found.addEventListener("submit", async ev => {
    ev.preventDefault();
    say(found, "");
    try {
      const view = await (await fetch(base)).json();
      const at = track.length ? track[track.length - 1] : [view.last_known.lat_deg, view.last_known.lon_deg];
      await Geo.post(`${base}/status`, { status: "found", version: view.version, found: { lat_deg: at[0], lon_deg: at[1], condition: new FormData(found).get("condition") } });
      location.href = "/";
    } catch (e) { say(found, `Not saved: ${e.message}`, true); }
  });
})();
