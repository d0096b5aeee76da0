// Alerts a dispatcher cannot miss, on the live map: each is shown in a live region (role=alert),
// sounds a short tone made by the Web Audio API (no audio file), stays until acknowledged, and is
// acknowledged once for everyone: the acknowledgement goes into the search's log on the server,
// so it does not come back on a reload or on another dispatcher's screen. Browsers let a page
// play sound only after a gesture on it: the first click or key press anywhere turns sound on,
// and until then the page says so.
// Text is only ever set with textContent (never innerHTML).
"use strict";
const Alerts = (() => {
  const REMIND_EVERY_S = 60;  // an alert nobody acknowledged sounds again this often
  const BEEP_S = 0.16, GAP_S = 0.07, LOUDNESS = 0.35;  // one beep's length, the pause, the gain
  // Each kind its own short tune (Hz), so that an ear tells them apart before an eye looks.
  const TUNES = {
    heard: [660, 880],
    "first-fix": [880, 880, 1175],
    silent: [494, 370, 494, 370],
    found: [523, 659, 784, 1047],
  };

  function create({ list, soundButton, base, canAcknowledge, onChange }) {
    const acknowledged = new Map();  // key -> who acknowledged it
    const shown = new Map();  // key -> { el, alert }
    const waiting = [];  // raised before the acknowledgements were read from the server
    let ready = false, audio = null;

    // --- sound ---------------------------------------------------------------------------------
    const AudioCtx = window.AudioContext || window.webkitAudioContext;
    function unlock() {
      if (audio || !AudioCtx) return;
      try { audio = new AudioCtx(); } catch (e) { return; }
      if (audio.state === "suspended") audio.resume();
      soundButton.hidden = true;
      for (const kind of ["click", "keydown", "touchend"]) document.removeEventListener(kind, unlock, true);
      // Alerts raised while sound was off sound now (the newest one's tune).
      const newest = list.firstElementChild;
      if (newest) tone(newest.dataset.kind);
    }
    if (AudioCtx) {
      for (const kind of ["click", "keydown", "touchend"]) document.addEventListener(kind, unlock, true);
    } else {
      soundButton.textContent = "This browser cannot sound the alerts: keep an eye on this list.";
      soundButton.disabled = true;
    }
    function tone(kind) {
      if (!audio) return;
      let t = audio.currentTime + 0.02;
      for (const hz of TUNES[kind] || TUNES.heard) {
        const osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = hz;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(LOUDNESS, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + BEEP_S);
        osc.connect(gain).connect(audio.destination);
        osc.start(t);
        osc.stop(t + BEEP_S + 0.02);
        t += BEEP_S + GAP_S;
      }
    }
    setInterval(() => {
      if (!canAcknowledge || !shown.size) return;
      const newest = list.firstElementChild;
      tone(newest ? newest.dataset.kind : "heard");
    }, REMIND_EVERY_S * 1000);

    // --- the list ------------------------------------------------------------------------------
    function changed() {
      document.title = document.title.replace(/^\(\d+\) /, "");
      if (shown.size) document.title = `(${shown.size}) ${document.title}`;
      if (onChange) onChange(shown.size);
    }
    function line(cls, text) { const p = document.createElement("p"); p.className = cls; p.textContent = text; return p; }
    function build(a) {
      const el = document.createElement("div");
      el.className = `alert-item alert-${a.kind}`;
      el.dataset.key = a.key;
      el.dataset.kind = a.kind;
      const words = document.createElement("div");
      words.className = "alert-words";
      words.append(line("alert-title", a.title), line("alert-detail", a.detail || ""));
      const actions = document.createElement("div");
      actions.className = "alert-actions";
      if (a.show) {
        const show = document.createElement("button");
        show.type = "button";
        show.className = "secondary";
        show.textContent = "Show";
        show.title = "Show it on the map";
        show.addEventListener("click", () => shown.get(a.key) && shown.get(a.key).alert.show());
        actions.appendChild(show);
      }
      if (canAcknowledge) {
        const ack = document.createElement("button");
        ack.type = "button";
        ack.className = "ack";
        ack.textContent = "Acknowledge";
        ack.addEventListener("click", () => acknowledge(a.key, ack));
        actions.appendChild(ack);
      } else {
        actions.appendChild(line("muted", "A dispatcher acknowledges it."));
      }
      el.append(words, actions, line("alert-error", ""));
      return el;
    }
    function raise(a) {
      if (!ready) { waiting.push(a); return; }
      if (acknowledged.has(a.key)) return;
      const had = shown.get(a.key);
      if (had) {  // the same alert again never comes twice; an update changes its words
        if (!a.update) return;
        had.alert = a;
        had.el.querySelector(".alert-title").textContent = a.title;
        had.el.querySelector(".alert-detail").textContent = a.detail || "";
        had.el.classList.toggle("resolved", Boolean(a.resolved));
        return;
      }
      const el = build(a);
      el.classList.toggle("resolved", Boolean(a.resolved));
      shown.set(a.key, { el, alert: a });
      list.prepend(el);
      tone(a.kind);
      changed();
    }
    function drop(key, by) {
      acknowledged.set(key, by || "");
      const had = shown.get(key);
      if (!had) return;
      had.el.remove();
      shown.delete(key);
      changed();
    }
    async function acknowledge(key, button) {
      const had = shown.get(key);
      const error = had && had.el.querySelector(".alert-error");
      button.disabled = true;
      try {
        const event = await Geo.post(`${base}/alerts/acknowledged`, { key });
        drop(key, event.body && event.body.by);
      } catch (e) {
        if (error) error.textContent = `Not acknowledged: ${e.message}`;
        button.disabled = false;
      }
    }
    // An acknowledgement in the search's log (read at start, or pushed live from another screen).
    function onEvent(e) { if (e && e.kind === "acknowledged" && e.body && e.body.key) drop(e.body.key, e.body.by); }
    async function load() {
      try {
        const r = await fetch(`${base}/alerts/acknowledged`);
        if (r.ok) (await r.json()).forEach(onEvent);
      } catch (e) { /* shown rather than lost: an alert acknowledged meanwhile goes when pushed */ }
      ready = true;
      waiting.splice(0).forEach(raise);
    }
    load();
    return { raise, onEvent, has: key => shown.has(key) || acknowledged.has(key) };
  }
  return { create, REMIND_EVERY_S, TUNES };
})();
