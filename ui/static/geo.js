// Small spherical helpers for the pages (display only: the server does the real geodesy).
"use strict";
const Geo = (() => {
  const R = 6371008.8, rad = Math.PI / 180;
  function destination(lat, lon, bearingDeg, distM) {
    const d = distM / R, b = bearingDeg * rad, p1 = lat * rad, l1 = lon * rad;
    const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(b));
    const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
    return [p2 / rad, ((l2 / rad + 540) % 360) - 180];
  }
  function distance(lat1, lon1, lat2, lon2) {
    const dp = (lat2 - lat1) * rad, dl = (lon2 - lon1) * rad;
    const a = Math.sin(dp / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dl / 2) ** 2;
    return 2 * R * Math.asin(Math.sqrt(a));
  }
  function bearing(lat1, lon1, lat2, lon2) {
    const p1 = lat1 * rad, p2 = lat2 * rad, dl = (lon2 - lon1) * rad;
    const y = Math.sin(dl) * Math.cos(p2), x = Math.cos(p1) * Math.sin(p2) - Math.sin(p1) * Math.cos(p2) * Math.cos(dl);
    return (Math.atan2(y, x) / rad + 360) % 360;
  }
  function ellipse(fix, points) {
    const e = fix.ellipse95, th = e.orientation_deg * rad, ring = [];
    for (let k = 0; k <= (points || 48); k++) {
      const phi = 2 * Math.PI * k / (points || 48);
      const x = e.semi_major_m * Math.cos(phi), y = e.semi_minor_m * Math.sin(phi);
      const east = x * Math.sin(th) - y * Math.cos(th), north = x * Math.cos(th) + y * Math.sin(th);
      ring.push(destination(fix.lat_deg, fix.lon_deg, Math.atan2(east, north) / rad, Math.hypot(east, north)));
    }
    return ring;
  }
  // One distinct colour per receiver, in the order they first appear on this page.
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22"];
  const assigned = new Map();
  function colour(key) {
    if (!assigned.has(key)) assigned.set(key, PALETTE[assigned.size % PALETTE.length]);
    return assigned.get(key);
  }
  function compass(deg) {
    return ["N", "NE", "E", "SE", "S", "SW", "W", "NW"][Math.round(deg / 45) % 8];
  }
  function csrf() { return document.querySelector('meta[name="csrf-token"]').content; }
  async function post(url, body) {
    const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(body) });
    const text = await r.text();
    let data = null;
    try { data = JSON.parse(text); } catch (e) { data = { detail: text }; }
    if (!r.ok) {
      let msg = data && data.detail;
      if (Array.isArray(msg)) msg = msg.map(d => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
      throw new Error(msg || `HTTP ${r.status}`);
    }
    return data;
  }
  function live(searchId, onMessage, onState) {
    // last: the id of the newest event seen (servers sharing a PostgreSQL number them), so a
    // socket that reconnects, to whichever server, is sent what it missed.
    let delay = 1000, ws = null, last = null;
    function open() {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const after = last === null ? "" : `?after=${last}`;
      ws = new WebSocket(`${scheme}://${location.host}/api/v1/searches/${searchId}/live${after}`);
      ws.onopen = () => { delay = 1000; onState("live"); };
      ws.onmessage = ev => {
        const message = JSON.parse(ev.data);
        if (Number.isInteger(message.id)) last = message.id;
        onMessage(message);
      };
      ws.onclose = () => { onState("reconnecting…"); setTimeout(open, delay); delay = Math.min(delay * 2, 30000); };
    }
    open();
  }
  return { destination, distance, bearing, ellipse, colour, compass, post, live };
})();
