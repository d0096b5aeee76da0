// The base map's tiles, as a person in the field meets them. With no coverage (or no tile server)
// every tile fails, and every pan would ask again: after a few failures and no success the map
// says so in words, stops asking, and offers to try again. With tiles off by setting it says
// that the map shows the search's own layers only.
"use strict";
const Basemap = (() => {
  const GIVE_UP_AFTER = 8;  // failed tiles in a row, none loaded, before the map stops asking
  function notice(map, text, button) {
    const box = L.DomUtil.create("div", "basemap-notice");
    box.setAttribute("role", "status");
    const words = L.DomUtil.create("span", "", box);
    words.textContent = text;
    if (button) {
      const b = L.DomUtil.create("button", "", box);
      b.type = "button";
      b.textContent = button.label;
      L.DomEvent.on(b, "click", ev => { L.DomEvent.stop(ev); button.act(); });
    }
    // Read once, it can go: on a phone's small map it would hide what matters.
    const hide = L.DomUtil.create("button", "basemap-hide", box);
    hide.type = "button";
    hide.textContent = "×";
    hide.title = "Hide this notice";
    hide.setAttribute("aria-label", "Hide this notice");
    L.DomEvent.disableClickPropagation(box);
    const control = L.control({ position: "bottomleft" });
    control.onAdd = () => box;
    L.DomEvent.on(hide, "click", ev => { L.DomEvent.stop(ev); control.remove(); });
    return control.addTo(map);
  }
  function watch(map) {
    let layer = null;
    map.eachLayer(l => { if (l instanceof L.TileLayer) layer = l; });
    if (!layer) {
      notice(map, "No street map: tiles are off on this server. The search's own layers are drawn on a plain background.");
      return;
    }
    let failed = 0, shown = null, lastUrl = "";
    const clear = () => { if (shown) { shown.remove(); shown = null; } };
    layer.on("tileload", () => { failed = 0; clear(); });
    layer.on("tileerror", async ev => {
      failed += 1;
      lastUrl = ev.tile && ev.tile.src || lastUrl;
      if (failed < GIVE_UP_AFTER || shown) return;
      // The server's own offline map answers 404 where it has no tiles: that is not a fault.
      if (lastUrl && new URL(lastUrl, location.href).origin === location.origin) {
        try {
          const r = await fetch(lastUrl);
          if (r.status === 404) {
            if (!shown) shown = notice(map, "No street map here: the offline map does not cover this area. The search's layers still work.");
            return;
          }
        } catch (e) { /* the server itself cannot be reached: as below */ }
      }
      if (shown) return;
      map.removeLayer(layer);  // stop asking a server that does not answer
      shown = notice(map, (navigator.onLine === false ? "No street map: this device is offline." : "No street map: the map tiles cannot be fetched (no coverage, or the tile server is down).") +
        " The search's layers still work; positions read in USNG and degrees.",
        { label: "Try the street map again", act: () => { clear(); failed = 0; map.addLayer(layer); } });
    });
  }
  return { watch };
})();
