// The join form, with htmx. Two things htmx does not do by itself:
// - a refused submit (422 what to fix, 409 taken or closed) is the form again saying why: swap it
//   in place (htmx 2 swaps no 4xx answer by default); any other failure (429, 400, 5xx) is an
//   error page: show its message in the page's place.
// - focus: the submit's button is swapped out with the form, taking the keyboard's focus along;
//   focus goes where the person acts next: the first field to fix, else the form's message, else
//   the answer's heading (the confirmation). A field's own check swaps only the field it left, so
//   focus stays where the person put it.
// - a field's check swaps the field's whole block (input, message, aria-invalid); if the person
//   has typed on in that field since it was sent, that answer is stale: drop it (their next
//   change checks again), so no keystroke is ever overwritten.
document.addEventListener("htmx:configRequest", function (event) {
  const input = event.detail.elt;
  if (input.matches && input.matches("#join-form input[hx-post]")) {
    input.dataset.sent = input.value;
  }
});

document.addEventListener("htmx:beforeSwap", function (event) {
  const elt = event.detail.requestConfig.elt;
  const status = event.detail.xhr.status;
  if (elt.matches && elt.matches("#join-form input[hx-post]")) {
    if (elt.value !== elt.dataset.sent) {
      event.detail.shouldSwap = false;
    }
    return;
  }
  if (elt.id !== "join-form" || status < 400) {
    return;
  }
  event.detail.shouldSwap = true;
  event.detail.isError = false;
  if (status !== 409 && status !== 422) {
    event.detail.target = document.querySelector("main");
    event.detail.selectOverride = "main";
    event.detail.swapOverride = "outerHTML";
  }
});

document.addEventListener("htmx:afterSettle", function (event) {
  const config = event.detail.requestConfig;
  if (!config || config.elt.id !== "join-form") {
    return;
  }
  const scope = document.getElementById("join") || document.querySelector("main");
  const next = scope && (scope.querySelector('[aria-invalid="true"], .has-error input')
      || scope.querySelector(".flash-error, h1"));
  if (next) {
    if (!next.matches("input, button, a, textarea, select")) {
      next.tabIndex = -1;
    }
    next.focus();
  }
});
