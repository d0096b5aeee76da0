// How the pages say where and how far: US National Grid (USNG, the civil form of MGRS on
// WGS 84, the grid US search-and-rescue teams plot with) beside decimal degrees, and distances
// and areas in the unit the agency set (metric, or feet and miles).
//
// It converts in the browser so that a team page without coverage still reads and takes grid
// references. UTM by Krüger's series to the fourth order (Karney 2011: well under a millimetre
// within a zone); the tests check it against the `mgrs` package's GEOTRANS conversion. Latitudes
// beyond 80° S and 84° N (the polar UPS grid) have no USNG reference here: degrees only.
"use strict";
const Where = (() => {
  const a = 6378137, f = 1 / 298.257223563, k0 = 0.9996, rad = Math.PI / 180;
  const n = f / (2 - f), n2 = n * n, n3 = n2 * n, n4 = n3 * n;
  const A = a / (1 + n) * (1 + n2 / 4 + n4 / 64), e = 2 * Math.sqrt(n) / (1 + n);
  const alpha = [n / 2 - 2 * n2 / 3 + 5 * n3 / 16 + 41 * n4 / 180, 13 * n2 / 48 - 3 * n3 / 5 + 557 * n4 / 1440,
    61 * n3 / 240 - 103 * n4 / 140, 49561 * n4 / 161280];
  const beta = [n / 2 - 2 * n2 / 3 + 37 * n3 / 96 - n4 / 360, n2 / 48 + n3 / 15 - 437 * n4 / 1440,
    17 * n3 / 480 - 37 * n4 / 840, 4397 * n4 / 161280];
  const delta = [2 * n - 2 * n2 / 3 - 2 * n3 + 116 * n4 / 45, 7 * n2 / 3 - 8 * n3 / 5 - 227 * n4 / 45,
    56 * n3 / 15 - 136 * n4 / 35, 4279 * n4 / 630];
  const BANDS = "CDEFGHJKLMNPQRSTUVWX", COLUMNS = ["ABCDEFGH", "JKLMNPQR", "STUVWXYZ"];
  const ROWS = "ABCDEFGHJKLMNPQRSTUV";

  function zoneOf(lat, lon) {
    if (lat >= 56 && lat < 64 && lon >= 3 && lon < 12) return 32;  // south-west Norway
    if (lat >= 72) {  // Svalbard
      if (lon >= 0 && lon < 9) return 31;
      if (lon >= 9 && lon < 21) return 33;
      if (lon >= 21 && lon < 33) return 35;
      if (lon >= 33 && lon < 42) return 37;
    }
    return Math.min(60, Math.floor((lon + 180) / 6) + 1);
  }
  function toUtm(lat, lon, zone) {
    const phi = lat * rad, lam = (lon - (zone * 6 - 183)) * rad;
    const t = Math.sinh(Math.atanh(Math.sin(phi)) - e * Math.atanh(e * Math.sin(phi)));
    const xi1 = Math.atan2(t, Math.cos(lam)), eta1 = Math.atanh(Math.sin(lam) / Math.sqrt(1 + t * t));
    let xi = xi1, eta = eta1;
    for (let j = 1; j <= 4; j++) {
      xi += alpha[j - 1] * Math.sin(2 * j * xi1) * Math.cosh(2 * j * eta1);
      eta += alpha[j - 1] * Math.cos(2 * j * xi1) * Math.sinh(2 * j * eta1);
    }
    return { easting: 500000 + k0 * A * eta, northing: (lat < 0 ? 10000000 : 0) + k0 * A * xi };
  }
  function fromUtm(easting, northing, zone, south) {
    const xi = (northing - (south ? 10000000 : 0)) / (k0 * A), eta = (easting - 500000) / (k0 * A);
    let xi1 = xi, eta1 = eta;
    for (let j = 1; j <= 4; j++) {
      xi1 -= beta[j - 1] * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
      eta1 -= beta[j - 1] * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
    }
    const chi = Math.asin(Math.sin(xi1) / Math.cosh(eta1));
    let phi = chi;
    for (let j = 1; j <= 4; j++) phi += delta[j - 1] * Math.sin(2 * j * chi);
    return { lat: phi / rad, lon: zone * 6 - 183 + Math.atan2(Math.sinh(eta1), Math.cos(xi1)) / rad };
  }

  // The USNG reference of a point, to `digits` digits each way (5: 1 m, 4: 10 m, 3: 100 m):
  // "18S UJ 23480 06470"; null beyond the UTM grid's latitudes.
  function usng(lat, lon, digits = 5) {
    if (!(lat >= -80 && lat <= 84) || !(lon >= -180 && lon <= 180)) return null;
    lon = lon === 180 ? -180 : lon;
    const zone = zoneOf(lat, lon), band = BANDS[Math.min(19, Math.floor((lat + 80) / 8))];
    const { easting, northing } = toUtm(lat, lon, zone);
    const column = COLUMNS[(zone - 1) % 3][Math.floor(easting / 100000) - 1];
    const row = ROWS[(Math.floor(northing / 100000) + (zone % 2 === 0 ? 5 : 0)) % 20];
    const scale = 10 ** (5 - digits);  // truncated, not rounded: the reference names the square the point is in
    const pad = v => String(Math.floor((v % 100000) / scale + 1e-6)).padStart(digits, "0");
    return `${zone}${band} ${column}${row}` + (digits ? ` ${pad(easting)} ${pad(northing)}` : "");
  }

  // A typed USNG/MGRS reference ("18S UJ 2348 0647", "18suj23480647") as the centre of the
  // square it names, with the square's size; an Error that says what is wrong otherwise.
  function parseUsng(text) {
    const s = String(text).toUpperCase().replace(/[\s,]+/g, " ").trim();
    const m = /^(\d{1,2}) ?([C-HJ-NP-X]) ?([A-HJ-NP-Z])([A-HJ-NP-V]) ?(\d*) ?(\d*)$/.exec(s);
    if (!m) throw new Error(`"${String(text).trim()}" is not a USNG reference: it reads zone, band, two square letters, then digits, such as 18S UJ 23480 06470`);
    const zone = Number(m[1]), band = BANDS.indexOf(m[2]);
    if (zone < 1 || zone > 60) throw new Error(`zone ${zone} does not exist: zones run 1 to 60`);
    let east = m[5], north = m[6];
    if (!north) {
      if (east.length % 2) throw new Error(`${east.length} digits cannot be split into easting and northing: give as many of each`);
      north = east.slice(east.length / 2); east = east.slice(0, east.length / 2);
    }
    if (east.length !== north.length) throw new Error(`the easting has ${east.length} digits and the northing ${north.length}: give as many of each`);
    if (east.length > 5) throw new Error("at most 5 digits each way (1 m)");
    const column = COLUMNS[(zone - 1) % 3].indexOf(m[3]);
    if (column < 0) throw new Error(`the square letters ${m[3]}${m[4]} are not used in zone ${zone}: check the zone and the first letter`);
    const row = (ROWS.indexOf(m[4]) - (zone % 2 === 0 ? 5 : 0) + 20) % 20;
    const size = 10 ** (5 - east.length);
    const easting = (column + 1) * 100000 + (east ? Number(east) * size : 0) + size / 2;
    const south = band < 10, base = row * 100000 + (north ? Number(north) * size : 0) + size / 2;
    // The row letters repeat every 2,000 km: take the repeat that falls in the named latitude band.
    const lo = -80 + band * 8, hi = band === 19 ? 84 : lo + 8;
    for (let k = 0; k < 6; k++) {
      const northing = base + k * 2000000;
      if (northing > 10000000) break;
      const p = fromUtm(easting, northing, zone, south);
      if (p.lat >= lo - 0.5 && p.lat <= hi + 0.5) return { lat: p.lat, lon: ((p.lon + 540) % 360) - 180, size_m: size };
    }
    throw new Error(`the square ${m[3]}${m[4]} does not lie in band ${m[2]} of zone ${zone}: check the band letter`);
  }

  // "18S UJ 23480 06470 · 38.90000, -77.03000" (degrees alone where USNG has no reference).
  function position(lat, lon, digits = 5) {
    const grid = usng(lat, lon, digits), degrees = `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
    return grid ? `${grid} · ${degrees}` : degrees;
  }
  // A typed place: a USNG reference or "lat, lon" in decimal degrees.
  function parsePlace(text) {
    const s = String(text).trim();
    const d = /^(-?\d+(?:\.\d+)?)\s*[,\s]\s*(-?\d+(?:\.\d+)?)$/.exec(s);
    if (d) {
      const lat = Number(d[1]), lon = Number(d[2]);
      if (!(lat >= -90 && lat <= 90)) throw new Error(`latitude ${d[1]} is outside -90..90`);
      if (!(lon >= -180 && lon <= 180)) throw new Error(`longitude ${d[2]} is outside -180..180`);
      return { lat, lon, size_m: 0 };
    }
    return parseUsng(s);
  }

  const imperial = () => document.documentElement.dataset.units === "imperial";
  const FT = 0.3048, MI = 1609.344;
  function number(v, places) { return v.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places }); }
  // A distance as a person reads it: "320 m", "1.25 km"; or "850 ft", "0.62 mi".
  function distance(m) {
    if (imperial()) return m < 1000 * FT ? `${number(m / FT, 0)} ft` : `${number(m / MI, m < 10 * MI ? 2 : 1)} mi`;
    return m < 1000 ? `${number(m, 0)} m` : `${number(m / 1000, m < 10000 ? 2 : 1)} km`;
  }
  // An area: hectares or km²; acres or square miles.
  function area(km2) {
    if (imperial()) {
      const acres = km2 * 247.105;
      return acres < 640 ? `${number(acres, acres < 10 ? 1 : 0)} acres` : `${number(km2 / 2.58999, 2)} sq mi`;
    }
    return km2 < 1 ? `${number(km2 * 100, km2 < 0.1 ? 1 : 0)} ha` : `${number(km2, 2)} km²`;
  }
  return { usng, parseUsng, parsePlace, position, distance, area };
})();
