// A player's forms answered in place with htmx: the Start press (templates/play/_state.html,
// form[data-start]) and the submit (templates/play/_questions.html, form[data-submit], on the live
// page and the stored form). The answer is the player's page itself (the questions after Start,
// "Answers in ✔" after the submit), and its <main> takes the place of this page's, so a phone makes
// one request where the plain form makes two (the 303, then the GET). Without JavaScript the form
// posts and follows the 303.
// - a refusal (time's up, round closed, a bad answer, already in, knocked out, slow down…) is a
//   page too, saying why: swap it in like any answer (htmx 2 swaps no 4xx by default).
// - an answer that is no page of ours (a proxy's error page) or no answer at all, or a request htmx
//   won't send (the stored form served from storage's own host): the form is posted the plain way,
//   and the browser shows what the server answers to that. Safe for both: a press is idempotent
//   (the clock starts once), a submit sent again is answered "already in" if the first was stored.
//   An answer that came by a redirect the XHR followed (the plain 303: "3xx means stored") but is
//   no page: the browser goes to where it led.
// - focus: the button is swapped out, taking the keyboard's focus along; focus goes to what to
//   read next: the page's message, else (after Start) the player's time, else the state's heading.
(function () {
  "use strict";

  var NEXT = {
    start: [".flash[role='alert']", ".timer", "#round-state h2", "h1"],
    submit: [".flash[role='alert']", "#round-state h2", "h1"]
  };

  function kindOf(elt) {
    if (!elt || !elt.matches) return null;
    if (elt.matches("form[data-start]")) return "start";
    if (elt.matches("form[data-submit]")) return "submit";
    return null;
  }

  function plain(form) {
    form.removeAttribute("hx-post");
    HTMLFormElement.prototype.submit.call(form);
  }

  function pathOf(url) {
    try {
      return new URL(url, window.location.href).pathname;
    } catch (error) {
      return null;
    }
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = event.detail.requestConfig.elt;
    if (!kindOf(form)) return;
    var xhr = event.detail.xhr;
    var page = /^text\/html/.test(xhr.getResponseHeader("Content-Type") || "")
        && /<main[\s>]/.test(xhr.responseText || "");
    if (page) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      return;
    }
    event.detail.shouldSwap = false;
    if (xhr.status === 200 && xhr.responseURL
        && pathOf(xhr.responseURL) !== pathOf(form.getAttribute("action"))) {
      window.location.href = xhr.responseURL;
      return;
    }
    plain(form);
  });

  ["htmx:sendError", "htmx:timeout", "htmx:invalidPath"].forEach(function (name) {
    document.addEventListener(name, function (event) {
      var detail = event.detail;  // (htmx:invalidPath's detail is the request's config itself)
      var form = detail.requestConfig ? detail.requestConfig.elt : detail.elt;
      if (kindOf(form) && form.isConnected) plain(form);
    });
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var config = event.detail.requestConfig;
    var kind = config && kindOf(config.elt);
    if (!kind) return;
    var main = document.querySelector("main");
    if (!main) return;
    var next = null;
    NEXT[kind].some(function (selector) {
      next = main.querySelector(selector);
      return next !== null;
    });
    if (!next) return;
    next.tabIndex = -1;
    next.focus();
  });
})();
