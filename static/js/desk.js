// The help desk console: a refused reply (422, 409) comes back as a page saying what to fix; show it.
// (htmx 2 does not swap 4xx answers by default; boosted forms here need them.)
document.addEventListener("htmx:beforeSwap", function (event) {
  const status = event.detail.xhr.status;
  if (status === 409 || status === 422) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
