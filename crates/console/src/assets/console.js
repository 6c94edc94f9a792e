// objectsync console: refreshes live sections, asks before destructive actions.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // <section data-refresh="url" data-every="5">: replaced by the fragment
  // at url every few seconds, without reloading the page.
  for (const el of document.querySelectorAll("[data-refresh]")) {
    const every = 1000 * Number(el.dataset.every || 5);
    const tick = async () => {
      try {
        const resp = await fetch(el.dataset.refresh, { credentials: "same-origin" });
        if (resp.ok) {
          el.innerHTML = await resp.text();
          el.dataset.refreshed = String(Date.now());
        }
      } catch (_) { /* the next tick tries again */ }
      setTimeout(tick, every);
    };
    setTimeout(tick, every);
  }
  // <form data-confirm="text">: a confirmation first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }
});
