// What the team page sends, kept on the phone until the server has it: bearings and "not heard
// here" (field reports, POST /api/v1/reports) and "heard it here" (POST .../heard). Everything
// goes through the outbox, with coverage or without: it is written to localStorage first (a page
// reloaded without coverage, from the service worker, still has it), then sent in the order it
// was made as soon as the server answers.
//
// Sent twice, stored once: each item carries what the server drops a duplicate by, a report its
// (receiver_id, seq) (spec/reports.md) and a heard report its key. An answer lost on the way, two
// tabs sending, or a retry after a timeout therefore never make a second bearing.
//
// Outcomes: sent (the server has it, perhaps already), refused (the server will never take it:
// its reason is shown and the item dropped), or waiting (no coverage, the server busy, the login
// ended, the page's CSRF token old): kept, and tried again.
"use strict";
const Outbox = (() => {
  const REPORTS_PER_POST = 100;
  const RETRY_FIRST_MS = 5000, RETRY_MAX_MS = 60000;

  function randomId() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return [...b].map(x => x.toString(16).padStart(2, "0")).join("");
  }
  function detailOf(data, status) {
    let msg = data && data.detail;
    if (Array.isArray(msg)) msg = msg.map(d => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
    return msg || `the server answered ${status}`;
  }

  // An outbox for the browser's receiver id; `events.change(items, why)` after every change (why:
  // null, "offline", "login", "reload", "busy"), `events.outcome(item, "sent" | "refused", text)`.
  function open(receiverId, csrf, events) {
    const key = `safetynet.outbox.${receiverId}`, seqKey = `safetynet.seq.${receiverId}`;
    let memory = [], stored = true, busy = false, again = false, timer = null, delay = RETRY_FIRST_MS;
    let why = null;

    function load() {
      if (!stored) return memory.slice();
      try { return JSON.parse(localStorage.getItem(key) || "[]"); } catch (e) { stored = false; return memory.slice(); }
    }
    function save(items) {
      memory = items.slice();
      if (stored) {
        try { localStorage.setItem(key, JSON.stringify(items)); } catch (e) { stored = false; }
      }
    }
    function changed() { events.change(load(), why); }

    // The next report seq of this receiver: after every one this phone made, and at least the
    // clock's milliseconds (a seq is never used twice: the server would take it for a repeat).
    function nextSeq() {
      let last = 0;
      try { last = Number(localStorage.getItem(seqKey)) || 0; } catch (e) { /* storage off */ }
      const seq = Math.max(last + 1, Date.now());
      try { localStorage.setItem(seqKey, String(seq)); } catch (e) { /* storage off */ }
      return seq;
    }

    // A field report (bearing or silence) to send; `words` says what it is ("bearing 147°").
    function addReport(report, words) {
      const item = { id: `${report.receiver_id}:${report.seq}`, type: "report", words, made_at: report.t, body: report };
      save(load().concat([item]));
      changed();
      return flush();
    }
    // A "heard it here" of search `searchId`; its key is the item's id.
    function addHeard(searchId, body, words) {
      const id = randomId();
      const item = { id, type: "heard", words, made_at: body.t, url: `/api/v1/searches/${encodeURIComponent(searchId)}/heard`, body: { ...body, key: id } };
      save(load().concat([item]));
      changed();
      return flush();
    }

    async function post(url, body) {
      let r;
      try {
        r = await fetch(url, { method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
      } catch (e) { return { wait: "offline" }; }
      let data = null;
      try { data = await r.json(); } catch (e) { data = null; }
      if (r.status === 401) return { wait: "login" };
      const detail = detailOf(data, r.status);
      if (r.status === 403 && /CSRF/i.test(detail)) return { wait: "reload" };
      if (r.status === 408 || r.status === 429 || r.status >= 500) return { wait: "busy" };
      if (!r.ok) return { refused: detail };
      return { data, status: r.status };
    }

    // Send the oldest items: a run of reports in one request, or one heard report.
    async function sendSome(items) {
      const first = items[0];
      if (first.type === "heard") {
        const out = await post(first.url, first.body);
        if (out.wait) return { wait: out.wait, done: [] };
        return { done: [[first, out.refused ? "refused" : "sent", out.refused || (out.status === 200 ? "already there" : "")]] };
      }
      const run = [];
      for (const item of items) { if (item.type !== "report" || run.length >= REPORTS_PER_POST) break; run.push(item); }
      const out = await post("/api/v1/reports", run.map(item => item.body));
      if (out.wait) return { wait: out.wait, done: [] };
      if (out.refused) return { done: run.map(item => [item, "refused", out.refused]) };
      const rejected = new Map((out.data.rejected || []).map(r => [r.index, r.message]));
      return { done: run.map((item, i) => rejected.has(i) ? [item, "refused", rejected.get(i)] : [item, "sent", ""]) };
    }

    async function drain() {
      for (;;) {
        const items = load();
        if (!items.length) { why = null; delay = RETRY_FIRST_MS; changed(); return; }
        const out = await sendSome(items);
        const gone = new Set(out.done.map(([item]) => item.id));
        if (gone.size) save(load().filter(item => !gone.has(item.id)));  // items added meanwhile stay
        for (const [item, outcome, text] of out.done) events.outcome(item, outcome, text);
        if (out.wait) {
          why = out.wait;
          changed();
          retryLater();
          return;
        }
        why = null;
        changed();
      }
    }

    function retryLater() {
      clearTimeout(timer);
      timer = setTimeout(flush, delay);
      delay = Math.min(delay * 2, RETRY_MAX_MS);
    }

    // Send what waits, once at a time per phone (tabs of the same receiver take turns).
    async function flush() {
      if (busy) { again = true; return; }
      busy = true;
      clearTimeout(timer);
      try {
        do {
          again = false;
          if (navigator.locks) await navigator.locks.request(`safetynet-outbox-${receiverId}`, drain);
          else await drain();
        } while (again);
      } finally { busy = false; }
    }

    window.addEventListener("online", () => { delay = RETRY_FIRST_MS; flush(); });
    window.addEventListener("storage", ev => { if (ev.key === key) changed(); });
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") flush(); });
    return { addReport, addHeard, flush, nextSeq, items: load, keeps: () => stored };
  }
  return { open };
})();
