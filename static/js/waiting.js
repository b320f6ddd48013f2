// Waiting phones (templates/play/_state.html): ask the shared status (GET /api/status, a 304 while
// nothing changed) every poll_seconds the server gives, plus a random spread of up to half of it so
// a room never polls in step. When the rounds changed (the status's rounds_version differs from the
// one the page was rendered with), say so at once from the status ("Round 2 is open — loading your
// questions…", in a live region) and fetch this page's state (the htmx fragment) at a random
// moment within the spread the status gives: spread_seconds when this page's round opened (a tap
// on "Show my questions now" fetches at once), result_spread_seconds for anything else (a close:
// nobody races a clock for a result). So the whole room's fetches never come in step. A second
// change during the delay fetches once (the page then shows both); one that makes the fetch more
// urgent brings it forward.
(function () {
  "use strict";
  var timer = null;
  var latest = null; // the newest status the server gave us (its version for If-None-Match)
  var pending = null; // the page fetch waiting for its moment: {timer, at, version}
  var fetching = false; // the page fetch on its way: a change seen meanwhile is in it

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
    fetch(section.dataset.statusUrl, {
      headers: {"If-None-Match": '"' + (latest ? latest.version : section.dataset.statusVersion)
                                + '"'},
      cache: "no-store", credentials: "omit"
    }).then(function (response) {
      if (response.status === 304) return null;
      if (!response.ok) throw new Error("status " + response.status);
      return response.json();
    }).then(function (status) {
      if (status) latest = status;
      if (latest) {
        seconds = latest.poll_seconds || seconds;
        var rounds = latest.rounds_version || latest.version;
        // Asked on every answer (a 304 too): a fetch that failed is scheduled again.
        if (rounds !== (section.dataset.roundsVersion || section.dataset.statusVersion)) {
          changed(section, latest);
        } else if (pending) { // undone before its fetch (a round reopened as it was): no fetch
          clearTimeout(pending.timer);
          pending = null;
          say(section, "", false);
        }
      }
      schedule(seconds);
    }).catch(function () {
      schedule(seconds); // offline for a moment: ask again later
    });
  }

  // The rounds changed: what it means for this page, said now; its fetch within the spread.
  function changed(section, status) {
    var round = Number(section.dataset.round);
    var opened = section.dataset.state === "not_open" && status.open_round === round;
    var ended = section.dataset.state === "submitted" && status.open_round !== round;
    var spread = opened ? status.spread_seconds : status.result_spread_seconds;
    var news = section.querySelector(".round-news");
    say(section, !news ? "" : opened ? news.dataset.opened : ended ? news.dataset.ended : "",
        opened);
    if (fetching || (pending && pending.version === status.version)) return;
    var delay = Math.random() * (Number(spread) || 0) * 1000;
    if (pending && Date.now() + delay >= pending.at) { // already coming, no later than this
      pending.version = status.version;
      return;
    }
    if (pending) clearTimeout(pending.timer);
    pending = {timer: setTimeout(refresh, delay), at: Date.now() + delay,
               version: status.version};
  }

  // What the status means for this page, in its live region ("": nothing to say, e.g. its round
  // opened and closed again before its fetch); the button that fetches at once with it, or not.
  function say(section, text, offerNow) {
    var news = section.querySelector(".round-news");
    if (news && (news.dataset.said || "") !== text) {
      news.dataset.said = text;
      news.replaceChildren();
      if (text) {
        var line = document.createElement("p");
        line.className = "flash flash-ok";
        line.textContent = text;
        news.appendChild(line);
      }
    }
    var now = section.querySelector(".round-now");
    if (now) now.hidden = !offerNow;
    // What the page said before the news no longer holds ("hasn't started", "results come when
    // the round ends"): hidden while the news stands; an opened round's old heading too.
    section.querySelectorAll(":scope > h2, :scope > p").forEach(function (old) {
      old.hidden = Boolean(text) && (old.tagName === "P" || offerNow);
    });
  }

  // Once: the new fragment carries the new versions (if it still waits). Should the fetch fail,
  // the next check finds the old version on the page and schedules it again.
  function refresh() {
    if (pending) clearTimeout(pending.timer);
    pending = null;
    var section = waitingSection();
    if (!section || fetching) return;
    fetching = true;
    // Focus inside the old section (or nowhere) goes to what to do next in the new one.
    var lost = !document.activeElement || document.activeElement === document.body
        || section.contains(document.activeElement);
    htmx.ajax("GET", section.dataset.refreshUrl, {target: section, swap: "outerHTML"})
      .then(function () { fetching = false; if (lost) focusNext(); },
            function () { fetching = false; });
  }

  // The new state's button (Start), else its heading: never the page's top, nowhere.
  function focusNext() {
    var section = document.getElementById("round-state");
    if (!section) return;
    var next = section.querySelector("button.primary:not([hidden]), a.button.primary")
        || section.querySelector("h2");
    if (!next) return;
    if (next.tagName === "H2") next.tabIndex = -1;
    next.focus();
  }

  function start() {
    var section = waitingSection();
    if (section && timer === null) schedule(Number(section.dataset.pollSeconds) || 10);
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#round-state .round-now")) refresh();
  });
  document.addEventListener("DOMContentLoaded", start);
  // A fragment swapped in by htmx (e.g. "Check in first" polling its own page) may start a wait.
  document.addEventListener("htmx:load", start);
})();
