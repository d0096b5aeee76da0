// The search team's page without coverage: a service worker. The server serves it at
// /searches/<id>/team-sw.js (ui/team_app.py), so that its scope is that search's team pages,
// /searches/<id>/ (the dispatcher's page, /searches/<id>, lies outside), and puts VERSION (a
// hash of what it keeps) and SHELL (the page's scripts, styles, Leaflet's files, the icons)
// before this source.
//
// - The team page: from the network when it answers within NETWORK_WAIT_MS, else the copy kept
//   the last time it did (weak coverage answers slowly rather than not at all). Only a page that
//   opened is kept; one that sends to the login (the session ended) or is refused removes it.
// - The shell: the copies taken when this worker was installed; a server with new files makes a
//   new worker (VERSION), which takes them anew and drops the old ones.
// - The person's photo and the manifest: from the network, else the copy kept with the page.
// - Nothing else (the API, the live socket, map tiles) passes here: bearings and heard reports
//   made without coverage wait in the page's outbox (outbox.js) until they are sent.
"use strict";
const SCOPE = new URL(self.registration.scope).pathname;  // "/searches/<id>/"
const PAGE = SCOPE + "team", MANIFEST = SCOPE + "team.webmanifest";
// The page's copy and the photo are kept apart from the shell: a new worker keeps them.
// team.js forgets the page's cache (its name is built the same way there) at logout.
const PREFIX = `safetynet-team:${SCOPE}:`, SHELL_CACHE = PREFIX + VERSION, PAGE_CACHE = PREFIX + "page";
const PHOTO = /^\/clients\/[A-Za-z0-9_-]{1,64}\/photo$/;
const NETWORK_WAIT_MS = 6000;

self.addEventListener("install", ev => {
  ev.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    await cache.addAll(SHELL.map(url => new Request(url, { cache: "reload" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", ev => {
  ev.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== SHELL_CACHE && name !== PAGE_CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function wait(ms) { return new Promise(resolve => setTimeout(resolve, ms)); }

// What a phone shows when it has no coverage and never opened the page with coverage.
function noCopy() {
  const text = "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width, initial-scale=1'>" +
    "<title>No coverage — SafetyNet</title><body style='font:17px/1.4 system-ui,sans-serif;padding:1rem'>" +
    "<h1 style='font-size:1.3rem'>No coverage, and no copy of this page on this phone</h1>" +
    "<p>The team page is kept on the phone once it has opened with coverage. Move to where the phone has a signal and open it again.</p>";
  return new Response(text, { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

async function teamPage(request) {
  const cache = await caches.open(PAGE_CACHE);
  const kept = await cache.match(PAGE);
  const network = fetch(request).then(async response => {
    // A server in trouble (a proxy's 502, a restart): the kept copy serves better, if there is one.
    if (response.status >= 500 && kept) throw new Error(`server answered ${response.status}`);
    try {
      if (response.status === 200 && response.type === "basic") await cache.put(PAGE, response.clone());
      else if (response.type === "opaqueredirect" || [401, 403, 404, 410].includes(response.status)) {
        await caches.delete(PAGE_CACHE);  // logged out, or not this user's search: forget it
      }
    } catch (err) { /* a full store keeps the older copy; the page still opens */ }
    return response;
  });
  if (!kept) return network.catch(noCopy);
  return Promise.race([network, wait(NETWORK_WAIT_MS).then(() => kept)]).catch(() => kept);
}

async function fromShell(request) {
  const kept = await caches.match(request, { cacheName: SHELL_CACHE });
  if (kept) return kept;
  const response = await fetch(request);
  if (response.ok) (await caches.open(SHELL_CACHE)).put(request, response.clone());
  return response;
}

async function keptWithPage(request) {
  const cache = await caches.open(PAGE_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const kept = await cache.match(request);
    if (kept) return kept;
    throw err;
  }
}

self.addEventListener("fetch", ev => {
  const request = ev.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== location.origin) return;
  if (url.pathname === PAGE && request.mode === "navigate") ev.respondWith(teamPage(request));
  else if (SHELL.includes(url.pathname) && !url.search) ev.respondWith(fromShell(request));
  else if (PHOTO.test(url.pathname) || url.pathname === MANIFEST) ev.respondWith(keptWithPage(request));
});
