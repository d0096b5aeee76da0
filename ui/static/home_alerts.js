// The home alerts page, live: a socket (/api/v1/home-alerts/live) says which alerts are open
// each time that changes — a wander alert raised by a station's post or by cron, a station gone
// silent, one cleared, a search opened from one — and the page then takes its list afresh from
// the server (the same page, parsed, its list swapped in: no reload, the scroll kept). A new
// wander alert is said aloud in a live region (role=alert) and sounds a short tone once sound is
// allowed (browsers allow it after the first click or key on the page). If the socket drops,
// the page says so and connects again.
// Text is only ever set with textContent (never innerHTML).
"use strict";
(() => {
  const state = document.getElementById("home-alerts-state");
  const news = document.getElementById("home-alerts-news");
  let delay = 1000, audio = null;

  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  function unlock() {
    if (audio || !AudioCtx) return;
    try { audio = new AudioCtx(); } catch (e) { return; }
    if (audio.state === "suspended") audio.resume();
  }
  for (const kind of ["click", "keydown", "touchend"]) document.addEventListener(kind, unlock, true);
  function tone() {
    if (!audio) return;
    let t = audio.currentTime + 0.02;
    for (const hz of [880, 660, 880, 660]) {  // the wander alert's own tune
      const osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = hz;
      gain.gain.value = 0.35;
      osc.connect(gain).connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.16);
      t += 0.23;
    }
  }

  function shownIds() {
    const section = document.querySelector("section.home-alerts");
    return (section ? section.dataset.alertIds : "").split(" ").filter(Boolean).sort().join(" ");
  }

  async function refresh() {
    const answer = await fetch(location.pathname, { headers: { accept: "text/html" }, credentials: "same-origin" });
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = doc.querySelector("section.home-alerts");
    const section = document.querySelector("section.home-alerts");
    if (fresh && section) section.replaceWith(document.importNode(fresh, true));
  }

  function say(message) {
    const raised = message.alerts.filter(a => message.new.includes(a.id));
    const wander = raised.filter(a => a.kind === "wander");
    const silent = raised.filter(a => a.kind !== "wander");
    const lines = [
      ...wander.map(a => `New wander alert: ${a.name} may have left home.`),
      ...silent.map(a => `${a.name}'s home station has gone silent.`),
    ];
    if (!lines.length) return;
    news.textContent = lines.join(" ");
    document.title = `(${message.alerts.length}) Home alerts — SafetyNet`;
    if (wander.length) tone();
  }

  async function take(message) {
    if (message.type !== "alerts") return;
    const ids = message.alerts.map(a => a.id).sort().join(" ");
    const searches = message.alerts.filter(a => a.search_id).length;
    const section = document.querySelector("section.home-alerts");
    const shownSearches = section ? section.querySelectorAll('a[href^="/searches/"]').length : 0;
    if (ids !== shownIds() || searches !== shownSearches) {
      try { await refresh(); } catch (e) { state.textContent = "Could not load the new alerts: reload the page."; return; }
    }
    if (!message.alerts.length) document.title = "Home alerts — SafetyNet";
    say(message);
  }

  function open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/home-alerts/live`);
    ws.onopen = () => { delay = 1000; state.textContent = "Live: new alerts show here as they are raised."; };
    ws.onmessage = ev => { take(JSON.parse(ev.data)); };
    ws.onclose = () => {
      state.textContent = "Not connected: reconnecting… (reload the page if this stays)";
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  open();
  // "Not heard for 12 minutes" grows older: the list is taken afresh once a minute too.
  setInterval(() => { refresh().catch(() => {}); }, 60000);
})();
