// Waiting phones (templates/play/_state.html): ask the shared status (GET /api/status, a 304 while
// nothing changed) every poll_seconds the server gives, plus a random spread of up to half of it so
// a room never polls in step, and fetch this page's state (the htmx fragment) only when the
// status's version differs from the one the page was rendered with.
(function () {
  "use strict";
  var timer = null;
  var known = null; // the newest version the server told us

  function waitingSection() {
    var section = document.getElementById("round-state");
    return section && section.dataset.statusVersion ? section : null;
  }

  function schedule(seconds) {
    clearTimeout(timer);
    timer = setTimeout(check, seconds * (1 + Math.random() / 2) * 1000);
  }

  function check() {
    timer = null;
    var section = waitingSection();
    if (!section) return; // not waiting any more
    var seconds = Number(section.dataset.pollSeconds) || 10;
    var rendered = section.dataset.statusVersion;
    fetch(section.dataset.statusUrl, {
      headers: {"If-None-Match": '"' + (known || rendered) + '"'},
      cache: "no-store", credentials: "omit"
    }).then(function (response) {
      if (response.status === 304) return null;
      if (!response.ok) throw new Error("status " + response.status);
      return response.json();
    }).then(function (status) {
      if (status) {
        known = status.version;
        seconds = status.poll_seconds || seconds;
      }
      if (known && known !== rendered) {
        // Once: the new fragment carries the new version (if it still waits). Should the fetch
        // fail, the next check finds the old version on the page and tries again.
        // Focus inside the old section (or nowhere) goes to what to do next in the new one.
        var lost = !document.activeElement || document.activeElement === document.body
            || section.contains(document.activeElement);
        htmx.ajax("GET", section.dataset.refreshUrl, {target: section, swap: "outerHTML"})
          .then(function () { if (lost) focusNext(); });
      }
      schedule(seconds);
    }).catch(function () {
      schedule(seconds); // offline for a moment: ask again later
    });
  }

  // The new state's button (Start), else its heading: never the page's top, nowhere.
  function focusNext() {
    var section = document.getElementById("round-state");
    if (!section) return;
    var next = section.querySelector("button.primary, a.button.primary")
        || section.querySelector("h2");
    if (!next) return;
    if (next.tagName === "H2") next.tabIndex = -1;
    next.focus();
  }

  function start() {
    var section = waitingSection();
    if (section && timer === null) schedule(Number(section.dataset.pollSeconds) || 10);
  }

  document.addEventListener("DOMContentLoaded", start);
  // A fragment swapped in by htmx (e.g. "Check in first" polling its own page) may start a wait.
  document.addEventListener("htmx:load", start);
})();
