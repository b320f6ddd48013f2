// Counts down every [data-countdown="<seconds left when rendered>"] once a second.
// Seconds left (not a timestamp) so a phone with a wrong clock still shows the right time;
// the server alone decides when a round closes. `data-unit` is the page's wording of "12 s" with
// %s for the number (its language), else "12 s".
(function () {
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (!el.dataset.deadline) el.dataset.deadline = now + 1000 * Number(el.dataset.countdown);
      var left = Math.max(0, Math.round((Number(el.dataset.deadline) - now) / 1000));
      var unit = el.dataset.unit || "%s s";
      el.textContent = el.classList.contains("countdown") ? String(left) : unit.replace("%s", left);
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);
})();
