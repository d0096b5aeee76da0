// The search team's phone page: which way and how far to the estimate from where I am, the map
// following the estimate, the team's own receiver marked "me", bearings (typed or from the
// compass) and heard / not heard here.
//
// Where I am: the phone's location; when that is off, unavailable or old, the position of the
// team's own handheld receiver from the live state (its GPS), said in words; or a position typed
// as a USNG reference or "lat, lon" (where.js), which wins until it is cleared. Everything sent
// goes through the outbox (outbox.js): kept on the phone without coverage, sent once when the
// phone is back. The page itself opens without coverage from the service worker (team-sw.js);
// the last state the server pushed is kept too, and shown with its age.
"use strict";
(() => {
  const root = document.getElementById("team");
  const $ = id => document.getElementById(id);
  const searchId = root.dataset.searchId, receiverId = root.dataset.receiverId;
  const teamName = root.dataset.teamName || null;
  const handhelds = JSON.parse(root.dataset.handhelds || "[]");  // this team's receivers
  const teamOf = JSON.parse(root.dataset.teams || "{}");  // receiver id -> team name, every team
  const lastKnown = JSON.parse(root.dataset.lastKnown || "null");
  const map = window[root.dataset.mapName];
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const PHONE_FRESH_MS = 2 * 60 * 1000;  // an older phone position gives way to the handheld's
  const HANDHELD_OLD_MS = 5 * 60 * 1000;  // a handheld position older than this is called old
  const SNAPSHOT_KEY = `safetynet.team.${searchId}.snapshot`, TYPED_KEY = `safetynet.team.${searchId}.typed`;
  // team-sw.js keeps the page's copy (and the photo) in this cache: forgotten at logout.
  const PAGE_CACHE = `safetynet-team:/searches/${searchId}/:page`;
  const ESTIMATE = "#c0392b", MINE = "#0b5cad";

  let phone = null, phoneProblem = null, typed = null, fix = null, snap = null, heading = null;
  let live = false, snapSavedAt = null, follow = true, ours = false, fitted = false, outboxWhy = null;

  // Text with its references kept whole on one line: a USNG reference, a "lat, lon", a receiver id.
  const WHOLE = /(\d{1,2}[C-HJ-NP-X] [A-HJ-NP-Z]{2}(?: \d+ \d+)?|-?\d+\.\d+, -?\d+\.\d+|\b[A-Z]{2,}-[A-Za-z0-9_-]+(?:'s)?)/;
  function put(el, text) {
    el.replaceChildren(...String(text).split(WHOLE).map((part, i) => {
      if (i % 2 === 0) return document.createTextNode(part);
      const span = document.createElement("span");
      span.className = "whole";
      span.textContent = part;
      return span;
    }));
  }
  function say(text, bad) { const m = $("team-message"); put(m, text); m.classList.toggle("bad-text", !!bad); }
  function label(text) { const s = document.createElement("span"); s.textContent = text; return s; }
  function read(key) { try { return JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { return null; } }
  function write(key, value) {
    try { value == null ? localStorage.removeItem(key) : localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* storage off: works while open */ }
  }
  function ageMs(when) { const t = typeof when === "number" ? when : Date.parse(when); return Number.isFinite(t) ? Math.max(0, Date.now() - t) : null; }
  function ago(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s ago`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ago`;
    return `${Math.floor(m / 60)} h ${m % 60} min ago`;
  }
  // Times on the agency's wall clock, as on the dispatcher's map (its zone from the server).
  function clock(when) {
    const d = new Date(when);
    if (Number.isNaN(d.getTime())) return "";
    const zone = root.dataset.zone ? { timeZone: root.dataset.zone } : {};
    const text = d.toLocaleTimeString("en-GB", { ...zone, hour: "2-digit", minute: "2-digit" });
    return root.dataset.zoneName ? `${text} ${root.dataset.zoneName}` : text;
  }

  // --- the team's own receivers and the others ----------------------------------------------------
  function isOwn(r) { return handhelds.includes(r.receiver_id) || (teamName !== null && r.team === teamName); }
  function positionTime(r) { return r.position_t || r.last_report_t; }
  function ownHandheld() {
    if (!snap) return null;
    const mine = snap.receivers.filter(r => isOwn(r) && r.lat_deg != null);
    mine.sort((a, b) => Date.parse(positionTime(b)) - Date.parse(positionTime(a)));
    return mine[0] || null;
  }

  // --- where I am -------------------------------------------------------------------------------
  function here() {
    if (typed) return { lat: typed.lat, lon: typed.lon, from: "typed" };
    if (phone && ageMs(phone.at) < PHONE_FRESH_MS) return { lat: phone.lat, lon: phone.lon, from: "phone" };
    const hh = ownHandheld();
    if (hh) return { lat: hh.lat_deg, lon: hh.lon_deg, from: "handheld", receiver: hh };
    if (phone) return { lat: phone.lat, lon: phone.lon, from: "phone" };  // old, but the best there is
    return null;
  }
  function phoneWords() {
    if (phone) return `Your phone's location is ${ago(ageMs(phone.at))} old`;
    return {
      denied: "Your location is off",
      unavailable: "Your phone cannot find its location",
      timeout: "Your phone has not found its location yet",
      unsupported: "This browser gives no location",
    }[phoneProblem] || "Your phone has not found its location yet";
  }
  function example() {
    return (lastKnown && Where.usng(lastKnown[0], lastKnown[1], 4)) || "18S UJ 2348 0647";
  }
  function describeHere(h) {
    const out = $("my-position");
    out.classList.remove("fallback", "nothing");
    $("clear-place").hidden = !typed;
    if (h && h.from === "typed") {
      const within = typed.size_m ? ` (the ${Where.distance(typed.size_m)} square it names)` : "";
      put(out, `Using the position you typed ${ago(ageMs(typed.at))}: ${Where.position(typed.lat, typed.lon)}${within}.`);
      return;
    }
    if (h && h.from === "phone") {
      const age = ageMs(phone.at);
      if (age < PHONE_FRESH_MS) { put(out, `Me: ${Where.position(phone.lat, phone.lon)} (±${Where.distance(phone.acc)})`); return; }
      put(out, `Your phone has not found its location for ${ago(age).replace(" ago", "")}: using where it last was, ${Where.position(phone.lat, phone.lon)}. If you have moved, type where you are.`);
      out.classList.add("fallback");
      return;
    }
    if (h) {
      const r = h.receiver, age = ageMs(positionTime(r));
      const when = age == null ? "" : ` (${ago(age)})`;
      const gps = r.gps_fix === false ? `last GPS position, it has no GPS fix now${when}` : `GPS${when}`;
      const old = age != null && age > HANDHELD_OLD_MS ? " That is old: if you have moved, type where you are." : "";
      put(out, `${phoneWords()}: using your handheld ${r.receiver_id}'s ${gps}. ${Where.position(r.lat_deg, r.lon_deg)}.${old}`);
      out.classList.add("fallback");
      return;
    }
    if (!phoneProblem && !phone) { out.textContent = "Finding my position…"; return; }
    const handheld = !teamName ? "you are on no team of this search, so no handheld gives a position"
      : handhelds.length ? `your handheld ${handhelds.join(", ")} has sent no position yet` : "your team has no handheld on this search";
    const turnOn = phoneProblem === "denied" ? "Turn on location for this site in the browser's settings, or type" : "Type";
    put(out, `${phoneWords()} and ${handheld}. ${turnOn} where you are under "Type where I am": a USNG reference such as ${example()}, or lat, lon.`);
    out.classList.add("nothing");
    $("place-box").open = true;
  }

  // --- the estimate, the map ---------------------------------------------------------------------
  const others = L.layerGroup().addTo(map), target = L.layerGroup().addTo(map), mine = L.layerGroup().addTo(map);

  function update() {
    const h = here();
    describeHere(h);
    const out = $("to-target"), from = $("target-from");
    if (fix && h) {
      const d = Geo.distance(h.lat, h.lon, fix.lat_deg, fix.lon_deg), b = Geo.bearing(h.lat, h.lon, fix.lat_deg, fix.lon_deg);
      out.textContent = `${Where.distance(d)} ${Geo.compass(b)} (${b.toFixed(0)}°)`;
      put(from, { phone: "from my phone", typed: "from the position you typed", handheld: `from your handheld ${h.receiver && h.receiver.receiver_id}` }[h.from]);
    } else if (fix) {
      out.textContent = "Which way: needs your position";
      from.textContent = "";
    } else {
      out.textContent = "Waiting for an estimate…";
      from.textContent = "";
    }
    out.classList.toggle("waiting", !(fix && h));
    put($("estimate"), fix
      ? `Estimate: ${Where.position(fix.lat_deg, fix.lon_deg)}, within ${Where.distance(fix.ellipse95.semi_major_m)} (95 %), ${ago(ageMs(fix.t))}`
      : "");
    drawTarget(h);
    drawMine();
    keepInView(false);
  }
  function drawTarget(h) {
    target.clearLayers();
    if (lastKnown) {
      L.circleMarker(lastKnown, { radius: 6, color: "#152238", weight: 2, fillColor: "#f5a623", fillOpacity: 1 })
        .bindTooltip(label("last seen"), { permanent: true, direction: "bottom", offset: [0, 6], className: "rx-label last-seen" }).addTo(target);
    }
    if (!fix) return;
    L.polygon(Geo.ellipse(fix), { color: ESTIMATE, weight: 2, fillOpacity: 0.12, className: "estimate-ellipse" }).addTo(target);
    if (h) L.polyline([[h.lat, h.lon], [fix.lat_deg, fix.lon_deg]], { color: ESTIMATE, weight: 2, dashArray: "6 6", interactive: false }).addTo(target);
    L.circleMarker([fix.lat_deg, fix.lon_deg], { radius: 8, color: "#fff", weight: 2, fillColor: ESTIMATE, fillOpacity: 1 })
      .bindTooltip(label("estimate"), { direction: "top", className: "rx-label estimate" }).addTo(target);
  }
  function ownMarker(lat, lon, text) {
    const icon = L.divIcon({ className: "own-marker", iconSize: [20, 20], html: "" });
    return L.marker([lat, lon], { icon, keyboard: false, zIndexOffset: 1000 })
      .bindTooltip(label(text), { permanent: true, direction: "right", offset: [10, 0], className: "rx-label own" });
  }
  function drawMine() {
    mine.clearLayers();
    if (phone) {
      L.circle([phone.lat, phone.lon], { radius: phone.acc, color: MINE, weight: 1, fillOpacity: 0.08, interactive: false }).addTo(mine);
      L.circleMarker([phone.lat, phone.lon], { radius: 8, color: MINE, weight: 3, fillColor: "#fff", fillOpacity: 1 })
        .bindTooltip(label("me (phone)"), { permanent: true, direction: "bottom", offset: [0, 8], className: "rx-label own" }).addTo(mine);
    }
    if (typed) ownMarker(typed.lat, typed.lon, "me (typed)").addTo(mine);
    if (snap) for (const r of snap.receivers) {
      if (isOwn(r) && r.lat_deg != null) ownMarker(r.lat_deg, r.lon_deg, `me (${r.receiver_id})`).addTo(mine);
    }
  }
  function drawOthers() {
    others.clearLayers();
    if (!snap) return;
    for (const r of snap.receivers) {
      // This phone's own reports (WEB-...) are drawn live as "me (phone)"; the team's receivers as "me".
      if (r.lat_deg == null || r.receiver_id === receiverId || isOwn(r)) continue;
      const name = r.team || teamOf[r.receiver_id] || r.receiver_id;
      L.circleMarker([r.lat_deg, r.lon_deg], { radius: 6, color: Geo.colour(r.receiver_id), weight: 3, fillColor: "#fff", fillOpacity: 0.9 })
        .bindTooltip(label(name), { permanent: true, direction: "right", className: "rx-label" }).addTo(others);
    }
  }

  // The map follows the estimate (fix and ellipse in view) until the user moves it; the button
  // brings it back. Our own moves are made without animation, so a move we did not make is the
  // user's (a drag, a pinch, the zoom buttons, the keys).
  const FollowControl = L.Control.extend({
    onAdd() {
      const b = L.DomUtil.create("button", "follow-button");
      b.type = "button"; b.id = "follow";
      L.DomEvent.disableClickPropagation(b);
      L.DomEvent.on(b, "click", ev => { L.DomEvent.stop(ev); setFollow(true); keepInView(true); });
      return b;
    },
  });
  new FollowControl({ position: "topright" }).addTo(map);
  function setFollow(on) {
    follow = on;
    const b = $("follow");
    b.setAttribute("aria-pressed", String(on));
    b.textContent = on ? "Following the estimate" : "Follow the estimate";
  }
  setFollow(true);
  map.on("movestart", () => { if (!ours && follow) setFollow(false); });
  function keepInView(always) {
    if (!follow && !always) return;
    let bounds;
    if (fix) bounds = L.latLngBounds(Geo.ellipse(fix));
    else {
      // No estimate yet: where I am and the last known point, where the search begins.
      const h = here();
      if (!h || !lastKnown) return;
      bounds = L.latLngBounds([[h.lat, h.lon], lastKnown]);
    }
    if (!always && fitted && map.getBounds().pad(-0.08).contains(bounds)) return;
    ours = true;
    // Clear of the zoom buttons (top left), the Follow button (top right) and the scale.
    const fit = { paddingTopLeft: [64, 72], paddingBottomRight: [40, 48], maxZoom: 18, animate: false };
    try { map.fitBounds(bounds, fit); } finally { ours = false; }
    fitted = true;
  }

  // --- the live state, kept for a page opened without coverage -----------------------------------
  function keep() {
    if (!snap) return;
    snapSavedAt = Date.now();
    write(SNAPSHOT_KEY, { saved_at: snapSavedAt, channel: snap.channel, bracelet_id: snap.bracelet_id, fix, receivers: snap.receivers });
  }
  function connection() {
    const out = $("connection");
    // The socket can look open a while after coverage went: the phone's own word, and a send
    // that failed, count too.
    if (live && navigator.onLine !== false && outboxWhy !== "offline") { out.textContent = "Live: the estimate updates as reports come in."; out.classList.remove("bad-text"); return; }
    const since = snapSavedAt ? ` Showing what it sent by ${clock(snapSavedAt)} (${ago(ageMs(snapSavedAt))}).` : "";
    out.textContent = `No connection to the server.${since} What you send waits on this phone.`;
    out.classList.add("bad-text");
  }
  const kept = read(SNAPSHOT_KEY);
  if (kept && kept.receivers) {
    snap = { type: "snapshot", channel: kept.channel, bracelet_id: kept.bracelet_id, receivers: kept.receivers, fix: kept.fix };
    fix = kept.fix; snapSavedAt = kept.saved_at;
  }
  typed = read(TYPED_KEY);
  drawOthers(); update(); connection();

  function onReport(m) {
    if (!snap) return;
    if (m.receiver) {
      snap.receivers = snap.receivers.filter(r => r.receiver_id !== m.receiver.receiver_id).concat([m.receiver]);
    } else if (m.report && m.report.receiver_id && m.report.lat_deg != null) {
      // Pulses and bearings carry where their receiver was: it moves without waiting for a status.
      const r = snap.receivers.find(x => x.receiver_id === m.report.receiver_id);
      const moved = { lat_deg: m.report.lat_deg, lon_deg: m.report.lon_deg, last_report_t: m.report.t, position_t: m.report.t };
      if (r) Object.assign(r, moved);
      else snap.receivers.push({ receiver_id: m.report.receiver_id, team: teamOf[m.report.receiver_id] || null, ...moved });
    } else return;
    drawOthers(); update();
  }
  Geo.live(searchId, function onMessage(m) {
    if (m.type === "batch") { m.messages.forEach(onMessage); keep(); return; }
    if (m.type === "snapshot") { snap = m; fix = m.fix; drawOthers(); update(); keep(); }
    else if (m.type === "fix") { fix = m.fix; update(); keep(); }
    else if (m.type === "report") { onReport(m); keep(); }
    else if (m.type === "ended") { forgetCopies(); $("connection").textContent = "This search has ended."; }
  }, state => {
    live = state === "live";
    connection();
    if (live) outbox.flush();
  });
  setInterval(() => { update(); connection(); }, 5000);  // ages ("12 s ago") keep counting
  window.addEventListener("offline", connection);
  window.addEventListener("online", connection);

  // --- the phone's location ---------------------------------------------------------------------
  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(p => {
      phone = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy, at: Date.now() };
      phoneProblem = null;
      update();
    }, e => {
      phoneProblem = { 1: "denied", 2: "unavailable", 3: "timeout" }[e.code] || "unavailable";
      update();
    }, { enableHighAccuracy: true, maximumAge: 10000 });
  } else { phoneProblem = "unsupported"; update(); }

  // A typed position: a USNG reference ("19T CG 3034 8378") or "lat, lon".
  $("place-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const input = $("place"), error = $("place-error");
    try {
      const p = Where.parsePlace(input.value);
      typed = { lat: p.lat, lon: p.lon, size_m: p.size_m, at: Date.now() };
      write(TYPED_KEY, typed);
      error.textContent = "";
      input.removeAttribute("aria-invalid");
      say(`Your position is now the one you typed: ${Where.position(p.lat, p.lon)}.`);
      update();
    } catch (e) {
      error.textContent = input.value.trim() ? e.message : `Type a USNG reference such as ${example()}, or lat, lon such as 42.30206, -71.05761.`;
      input.setAttribute("aria-invalid", "true");
    }
  });
  $("clear-place").addEventListener("click", () => {
    typed = null; write(TYPED_KEY, null); $("place").value = "";
    say(phone ? "Using my phone's location again." : "The typed position is cleared.");
    update();
  });

  // --- the compass ------------------------------------------------------------------------------
  window.addEventListener("deviceorientationabsolute", ev => { if (ev.alpha != null) heading = (360 - ev.alpha) % 360; });
  window.addEventListener("deviceorientation", ev => {
    if (ev.webkitCompassHeading != null) heading = ev.webkitCompassHeading;
    else if (ev.absolute && ev.alpha != null) heading = (360 - ev.alpha) % 360;
  });
  $("use-compass").addEventListener("click", async () => {
    if (typeof DeviceOrientationEvent !== "undefined" && DeviceOrientationEvent.requestPermission) {
      try { await DeviceOrientationEvent.requestPermission(); } catch (e) { /* refused: typed bearings still work */ }
    }
    if (heading == null) { say("No compass on this device: type the bearing."); return; }
    document.querySelector('#bearing-form [name="bearing_deg"]').value = heading.toFixed(0);
    say(`Compass: ${heading.toFixed(0)}° (point the phone the way the signal is loudest)`);
  });

  // --- sending: bearings, heard, not heard --------------------------------------------------------
  function waiting(items, why) {
    outboxWhy = why;
    connection();
    const box = $("outbox-state");
    box.hidden = !items.length;
    if (!items.length) return;
    const one = items.length === 1, they = one ? "it goes" : "they go";
    const reason = {
      login: `Your login has ended: log in again on this phone and ${they}`,
      reload: `This page is older than your login: reload it and ${they}`,
      busy: "The server is busy: trying again shortly",
    }[why] || `No coverage: ${they} as soon as the phone reaches the server`;
    put($("outbox-count"), `${items.length} waiting to send (${items.map(i => i.words).join(", ")}). ${reason}.`);
  }
  const outbox = Outbox.open(receiverId, csrf, {
    change: waiting,
    outcome(item, outcome, text) {
      if (outcome === "sent") say(`Sent: ${item.words}${text ? ` (${text})` : ""}.`);
      else say(`Not taken: ${item.words}, made at ${clock(item.made_at)}: ${text}`, true);
    },
  });
  if (!outbox.keeps()) say("This browser keeps nothing on the phone (storage is off): what you send is lost if the page closes before it goes.", true);
  waiting(outbox.items(), null);
  $("send-now").addEventListener("click", () => outbox.flush());

  function base(kind) {
    const h = here();
    if (!h) throw new Error(`${kind} needs where you are: turn on location or type your position under "Type where I am"`);
    if (!snap || snap.channel == null) throw new Error("the search has no bracelet channel yet: wait for the live state");
    return { receiver_id: receiverId, seq: outbox.nextSeq(), t: new Date().toISOString(), channel: snap.channel, lat_deg: h.lat, lon_deg: h.lon };
  }
  function queued(words) { return navigator.onLine === false || !live ? `Kept on this phone: ${words}.` : `Sending ${words}…`; }
  $("bearing-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const f = new FormData(ev.target), bearing = Number(f.get("bearing_deg")), sigma = Number(f.get("sigma_deg"));
    try {
      const report = { kind: "bearing", ...base("A bearing"), bracelet_id: snap.bracelet_id, bearing_deg: bearing % 360,
        sigma_deg: sigma, method: "manual", n_pulses: 0 };
      const words = `bearing ${Number(bearing.toFixed(1))}°`;
      say(queued(words));
      outbox.addReport(report, words);
    } catch (e) { say(`Not sent: ${e.message}.`, true); }
  });
  $("not-heard").addEventListener("click", () => {
    try {
      const words = "not heard here";
      say(queued(words));
      outbox.addReport({ kind: "silence", ...base("Not heard here"), window_s: 30.0, antenna: "yagi3" }, words);
    } catch (e) { say(`Not sent: ${e.message}.`, true); }
  });
  $("heard").addEventListener("click", () => {
    const h = here();
    if (!h) { say(`Not sent: heard here needs where you are: turn on location or type your position under "Type where I am".`, true); return; }
    const words = "heard here";
    say(queued(words));
    outbox.addHeard(searchId, { lat_deg: h.lat, lon_deg: h.lon, t: new Date().toISOString() }, words);
  });

  // --- without coverage: the service worker, and forgetting at logout -----------------------------
  function forgetCopies() {
    write(SNAPSHOT_KEY, null);
    return "caches" in window ? caches.delete(PAGE_CACHE).catch(() => false) : Promise.resolve(false);
  }
  const logout = document.querySelector("form.logout");
  if (logout) logout.addEventListener("submit", ev => {
    ev.preventDefault();
    forgetCopies().finally(() => logout.submit());
  });
  // The page keeps its own copy (and the photo's) the first time: the worker was not yet there
  // when it was fetched; later visits are kept by the worker itself.
  async function keepCopies() {
    const cache = await caches.open(PAGE_CACHE);
    const photo = document.querySelector("#person img.photo");
    for (const url of [location.pathname, photo && photo.getAttribute("src")].filter(Boolean)) {
      if (await cache.match(url)) continue;
      try {
        const r = await fetch(url, { credentials: "same-origin" });
        if (r.status === 200) await cache.put(url, r);
      } catch (e) { /* no coverage now: kept on a later visit */ }
    }
    return cache.match(location.pathname);
  }
  if ("serviceWorker" in navigator && "caches" in window) {
    const scope = `/searches/${encodeURIComponent(searchId)}/`;
    navigator.serviceWorker.register(`${scope}team-sw.js`, { scope })
      .then(() => navigator.serviceWorker.ready)
      .then(keepCopies)
      .then(copy => {
        $("offline-ready").textContent = copy ? "Kept on this phone: this page opens without coverage."
          : "Not yet kept on this phone: open the page once with coverage to have it without.";
      })
      .catch(e => { $("offline-ready").textContent = `This page cannot be kept on the phone (${e.message}): it needs coverage to open.`; });
  } else $("offline-ready").textContent = "This browser cannot keep the page on the phone: it needs coverage to open.";
})();
