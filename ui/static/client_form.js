"use strict";
// The enrolment and record form, checked in the browser before it is sent (the server checks
// everything again): lengths, required fields, the date of birth, the photo's size and kind and
// the phone numbers, each message in words next to its field, nothing typed lost. Places are
// set on the map: "Set on map" beside a place, then a tap on the map fills its position.
(() => {
  const form = document.getElementById("client-form");
  if (!form) return;

  function nameOf(el) {
    return el.dataset.label || el.name;
  }
  function say(el, message) {
    const label = el.closest("label");
    const slot = document.getElementById(`err-${el.name}`);
    if (label) label.classList.toggle("bad", Boolean(message));
    if (slot) {
      slot.textContent = message;
      if (message) slot.setAttribute("role", "alert");
      else slot.removeAttribute("role");
    }
    el.setAttribute("aria-invalid", message ? "true" : "false");
  }
  function problem(el) {
    const value = el.type === "file" ? "" : (el.value || "");
    const max = Number(el.dataset.max || 0);
    if (el.required && !value.trim()) return `${nameOf(el)}: please fill this in.`;
    if (max && value.length > max) {
      return `${nameOf(el)} is ${value.length} characters long; it can be at most ${max}. Please shorten it.`;
    }
    if (el.type === "date" && value) {
      if (el.validity.badInput || !/^\d{4}-\d{2}-\d{2}$/.test(value)) return `${nameOf(el)}: this is not a date.`;
      if (el.max && value > el.max) return `${nameOf(el)} cannot be in the future.`;
      if (el.min && value < el.min) return `${nameOf(el)} cannot be before ${el.min.slice(0, 4)}.`;
    }
    if (el.type === "number" && value) {
      const n = Number(value);
      if (!Number.isFinite(n) || !Number.isInteger(n)) return `${nameOf(el)}: write a whole number.`;
      if (el.min && n < Number(el.min)) return `${nameOf(el)} must be at least ${el.min}.`;
      if (el.max && n > Number(el.max)) return `${nameOf(el)} must be at most ${el.max}.`;
    }
    if (el.type === "tel" && value.trim()) {
      const digits = value.replace(/\D/g, "");
      if (/[A-Za-z]/.test(value.replace(/(ext|x)\.?\s*\d+$/i, ""))) return "Write the phone number in digits, such as +1 617 555 0100.";
      if (digits.length < 7) return `This phone number has only ${digits.length} digits; write the whole number with its area code.`;
    }
    if (el.type === "file" && el.files && el.files.length) {
      const file = el.files[0], limit = Number(el.dataset.maxBytes || 0);
      if (!/^image\/(jpeg|png)$/.test(file.type)) return `The photo must be a JPEG or PNG picture; “${file.name}” is not one.`;
      if (limit && file.size > limit) {
        const mb = n => (n / 1048576).toFixed(1);
        return `The photo is ${mb(file.size)} MB; it can be at most ${mb(limit)} MB. Please choose a smaller one.`;
      }
    }
    const lat = /^place_lat_(\d+)$/.exec(el.name) || /^place_lon_(\d+)$/.exec(el.name);
    if (lat && value.trim()) {
      const n = Number(value), limit = el.name.startsWith("place_lat") ? 90 : 180;
      if (!Number.isFinite(n) || Math.abs(n) > limit) return `${nameOf(el)} must be a number from -${limit} to ${limit}.`;
    }
    return "";
  }
  // A caregiver row with a phone but no name (or a name but no phone) is half a contact.
  function rowProblems() {
    const out = [];
    form.querySelectorAll('input[name^="caregiver_name_"]').forEach(nameEl => {
      const i = nameEl.name.slice("caregiver_name_".length);
      const phone = form.querySelector(`input[name="caregiver_phone_${i}"]`);
      if (!phone) return;
      const n = Number(i) + 1;
      if (phone.value.trim() && !nameEl.value.trim()) out.push([nameEl, `Caregiver ${n}: whose number is this? Write their name.`]);
      if (nameEl.value.trim() && !phone.value.trim()) out.push([phone, `Caregiver ${n} (${nameEl.value.trim()}): write a phone number for them.`]);
    });
    return out;
  }
  const fields = () => Array.from(form.querySelectorAll("input[name], textarea[name]"))
    .filter(el => el.type !== "hidden" && el.type !== "checkbox");
  fields().forEach(el => el.addEventListener("change", () => say(el, problem(el))));

  form.addEventListener("submit", ev => {
    const bad = [];
    fields().forEach(el => { const m = problem(el); say(el, m); if (m) bad.push([el, m]); });
    rowProblems().forEach(([el, m]) => { if (!bad.some(([b]) => b === el)) { say(el, m); bad.push([el, m]); } });
    const summary = document.getElementById("form-problems");
    if (bad.length) {
      ev.preventDefault();
      summary.hidden = false;
      summary.querySelector("p").textContent = bad.length === 1
        ? "Nothing was sent yet: please fix the thing marked in red below."
        : `Nothing was sent yet: please fix the ${bad.length} things marked in red below.`;
      const list = summary.querySelector("ul");
      list.replaceChildren(...bad.map(([el, m]) => {
        const li = document.createElement("li"), a = document.createElement("a");
        a.href = `#err-${el.name}`; a.textContent = m;
        a.addEventListener("click", e => { e.preventDefault(); el.focus(); });
        li.append(a); return li;
      }));
      bad[0][0].focus();
      return;
    }
    summary.hidden = true;
    const button = form.querySelector('button[type="submit"]');
    if (button) { button.disabled = true; button.textContent = "Saving…"; }
  });

  // Places on the map.
  const box = document.getElementById("place-map");
  const map = box ? window[box.dataset.mapName] : null;
  if (!map || typeof L === "undefined") return;
  const markers = new Map();
  let picking = null;
  function show(row) {
    const lat = Number(form.querySelector(`[name="place_lat_${row}"]`).value);
    const lon = Number(form.querySelector(`[name="place_lon_${row}"]`).value);
    const raw = form.querySelector(`[name="place_lat_${row}"]`).value;
    if (markers.has(row)) { markers.get(row).remove(); markers.delete(row); }
    if (raw.trim() === "" || !Number.isFinite(lat) || !Number.isFinite(lon)) return null;
    const label = form.querySelector(`[name="place_label_${row}"]`).value || `Place ${Number(row) + 1}`;
    const tip = document.createElement("span");
    tip.textContent = label;  // text, never markup: the label is what someone typed
    const marker = L.marker([lat, lon], { title: label }).addTo(map).bindTooltip(tip);
    markers.set(row, marker);
    return marker;
  }
  const shown = [];
  form.querySelectorAll(".place").forEach(div => { const m = show(div.dataset.row); if (m) shown.push(m.getLatLng()); });
  if (shown.length > 1) map.fitBounds(L.latLngBounds(shown), { padding: [30, 30], maxZoom: 16 });
  form.querySelectorAll(".set-on-map").forEach(button => button.addEventListener("click", () => {
    picking = button.dataset.row;
    box.classList.add("picking");
    const hint = document.getElementById("place-map-hint");
    if (hint) hint.textContent = `Now tap the map where place ${Number(picking) + 1} is.`;
    box.scrollIntoView({ block: "center" });
  }));
  map.on("click", e => {
    if (picking === null) return;
    form.querySelector(`[name="place_lat_${picking}"]`).value = e.latlng.lat.toFixed(6);
    form.querySelector(`[name="place_lon_${picking}"]`).value = e.latlng.lng.toFixed(6);
    show(picking);
    const hint = document.getElementById("place-map-hint");
    if (hint) hint.textContent = `Place ${Number(picking) + 1} set. Tap “Set on map” beside a place to set or move it.`;
    picking = null;
    box.classList.remove("picking");
  });
  form.querySelectorAll('[name^="place_lat_"], [name^="place_lon_"]').forEach(el =>
    el.addEventListener("change", () => show(el.name.split("_").pop())));
})();
