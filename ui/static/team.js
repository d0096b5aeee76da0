// The search team's phone page: where I am, which way and how far to the estimate, send a
// bearing (typed or from the compass), heard / not heard here, the other teams on the map.
"use strict";
(() => {
  const root = document.getElementById("team");
  const searchId = root.dataset.searchId, receiverId = root.dataset.receiverId;
  const map = window[root.dataset.mapName];
  const others = L.layerGroup().addTo(map), target = L.layerGroup().addTo(map), me = L.layerGroup().addTo(map);
  let my = null, fix = null, snap = null, heading = null;
  const message = document.getElementById("team-message");
  function say(text) { message.textContent = text; }
  function label(text) { const s = document.createElement("span"); s.textContent = text; return s; }

  function update() {
    const out = document.getElementById("to-target");
    if (fix && my) {
      const d = Geo.distance(my.lat, my.lon, fix.lat_deg, fix.lon_deg), b = Geo.bearing(my.lat, my.lon, fix.lat_deg, fix.lon_deg);
      out.textContent = `${d < 1000 ? d.toFixed(0) + " m" : (d / 1000).toFixed(2) + " km"} ${Geo.compass(b)} (${b.toFixed(0)}°)`;
    } else if (fix) out.textContent = "Estimate received; waiting for my position";
    target.clearLayers();
    if (fix) {
      L.polygon(Geo.ellipse(fix), { color: "#c0392b", weight: 2, fillOpacity: 0.12 }).addTo(target);
      L.circleMarker([fix.lat_deg, fix.lon_deg], { radius: 7, color: "#fff", weight: 2, fillColor: "#c0392b", fillOpacity: 1 }).addTo(target);
    }
    me.clearLayers();
    if (my) L.circleMarker([my.lat, my.lon], { radius: 7, color: "#0b5cad", weight: 3, fillColor: "#fff", fillOpacity: 1 }).bindTooltip(label("me")).addTo(me);
  }
  function drawOthers() {
    others.clearLayers();
    if (!snap) return;
    for (const r of snap.receivers) {
      if (r.lat_deg == null) continue;
      L.circleMarker([r.lat_deg, r.lon_deg], { radius: 5, color: Geo.colour(r.receiver_id), weight: 3 })
        .bindTooltip(label(r.receiver_id + (r.team ? ` (${r.team})` : "")), { permanent: true, direction: "right", className: "rx-label" }).addTo(others);
    }
  }
  if (navigator.geolocation) {
    navigator.geolocation.watchPosition(p => {
      my = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy };
      document.getElementById("my-position").textContent = `Me: ${my.lat.toFixed(5)}, ${my.lon.toFixed(5)} (±${Math.round(my.acc)} m)`;
      update();
    }, e => { document.getElementById("my-position").textContent = `No position from this phone: ${e.message}`; }, { enableHighAccuracy: true });
  } else document.getElementById("my-position").textContent = "This browser gives no position.";

  window.addEventListener("deviceorientationabsolute", ev => { if (ev.alpha != null) heading = (360 - ev.alpha) % 360; });
  window.addEventListener("deviceorientation", ev => {
    if (ev.webkitCompassHeading != null) heading = ev.webkitCompassHeading;
    else if (ev.absolute && ev.alpha != null) heading = (360 - ev.alpha) % 360;
  });
  document.getElementById("use-compass").addEventListener("click", async () => {
    if (typeof DeviceOrientationEvent !== "undefined" && DeviceOrientationEvent.requestPermission) {
      try { await DeviceOrientationEvent.requestPermission(); } catch (e) { /* refused: typed bearings still work */ }
    }
    if (heading == null) { say("No compass on this device: type the bearing."); return; }
    document.querySelector('#bearing-form [name="bearing_deg"]').value = heading.toFixed(0);
    say(`Compass: ${heading.toFixed(0)}° (point the phone the way the signal is loudest)`);
  });

  let seq = Date.now();
  function nextSeq() { seq = Math.max(seq + 1, Date.now()); return seq; }
  function base() {
    if (!my) throw new Error("no position yet: allow location on this page");
    if (!snap || snap.channel == null) throw new Error("the search has no bracelet channel");
    return { receiver_id: receiverId, seq: nextSeq(), t: new Date().toISOString(), channel: snap.channel, lat_deg: my.lat, lon_deg: my.lon };
  }
  async function send(report) {
    const r = await Geo.post("/api/v1/reports", [report]);
    if (r.rejected.length) throw new Error(r.rejected[0].message);
  }
  document.getElementById("bearing-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    try {
      await send({ kind: "bearing", ...base(), bracelet_id: snap.bracelet_id, bearing_deg: Number(f.get("bearing_deg")) % 360,
        sigma_deg: Number(f.get("sigma_deg")), method: "manual", n_pulses: 0 });
      say(`Bearing ${Number(f.get("bearing_deg")).toFixed(0)}° sent.`);
    } catch (e) { say(`Not sent: ${e.message}`); }
  });
  document.getElementById("not-heard").addEventListener("click", async () => {
    try { await send({ kind: "silence", ...base(), window_s: 30.0, antenna: "yagi3" }); say("Sent: not heard here."); }
    catch (e) { say(`Not sent: ${e.message}`); }
  });
  document.getElementById("heard").addEventListener("click", async () => {
    try {
      if (!my) throw new Error("no position yet: allow location on this page");
      await Geo.post(`/api/v1/searches/${searchId}/heard`, { lat_deg: my.lat, lon_deg: my.lon });
      say("Sent: heard here.");
    } catch (e) { say(`Not sent: ${e.message}`); }
  });

  Geo.live(searchId, function onMessage(m) {
    if (m.type === "batch") { m.messages.forEach(onMessage); return; }
    if (m.type === "snapshot") { snap = m; fix = m.fix; drawOthers(); update(); }
    else if (m.type === "fix") { fix = m.fix; update(); }
    else if (m.type === "report" && m.receiver && snap) {
      snap.receivers = snap.receivers.filter(r => r.receiver_id !== m.receiver.receiver_id).concat([m.receiver]);
      drawOthers();
    }
  }, () => {});
})();
