// The Start press with htmx (templates/play/_state.html): the answer is the questions page itself,
// and its <main> takes the place of this page's, so a phone makes one request where the plain
// form makes two (the 303, then the GET). Without JavaScript the form posts and follows the 303.
// - a refusal (time's up, round closed, knocked out, slow down…) is a page too, saying why: swap
//   it in like any answer (htmx 2 swaps no 4xx by default). An answer that is no page of ours
//   (a proxy's error page) or no answer at all: the form is posted the plain way, and the browser
//   shows what the server answers to that (a press is idempotent: the clock starts once).
// - focus: the Start button is swapped out, taking the keyboard's focus along; focus goes to what
//   to read next: the page's message, else the player's time, else the state's heading. Tab then
//   goes on to the first question.
(function () {
  "use strict";

  function isStart(elt) {
    return Boolean(elt && elt.matches && elt.matches("form[data-start]"));
  }

  function plain(form) {
    form.removeAttribute("hx-post");
    HTMLFormElement.prototype.submit.call(form);
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig.elt;
    if (!isStart(form)) return;
    var xhr = event.detail.xhr;
    var page = /^text\/html/.test(xhr.getResponseHeader("Content-Type") || "")
        && /<main[\s>]/.test(xhr.responseText || "");
    if (page) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      return;
    }
    event.detail.shouldSwap = false;
    plain(form);
  });

  ["htmx:sendError", "htmx:timeout"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var form = event.detail.requestConfig && event.detail.requestConfig.elt;
      if (isStart(form) && form.isConnected) plain(form);
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig;
    if (!config || !isStart(config.elt)) return;
    var main = document.querySelector("main");
    if (!main) return;
    var next = null;
    [".flash[role='alert']", ".timer", "#round-state h2", "h1"].some(function (selector) {
      next = main.querySelector(selector);
      return next !== null;
    });
    if (!next) return;
    next.tabIndex = -1;
    next.focus();
  });
})();
