"use strict";
// The printable record's Print button (scripts run only from this server's files).
document.getElementById("print-button")?.addEventListener("click", () => window.print());
