// What a team page kept on this device for use without coverage (its page and the person's
// photo, ui/static/team-sw.js) is forgotten once no one is logged in here: at a logout from any
// page, and on any page seen logged out (the login page after a session ended or was ended
// elsewhere). The team page forgets at its own logout itself (team.js).
"use strict";
(() => {
  if (!("caches" in window)) return;
  const forget = () => caches.keys()
    .then(names => Promise.all(names.filter(n => n.startsWith("safetynet-team:") && n.endsWith(":page")).map(n => caches.delete(n))))
    .catch(() => undefined);
  const logout = document.querySelector("form.logout");
  if (!logout) { forget(); return; }
  if (document.getElementById("team")) return;
  logout.addEventListener("submit", ev => {
    ev.preventDefault();
    forget().finally(() => logout.submit());
  });
})();
