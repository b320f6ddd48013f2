// Staff accounts: a refused change (403, 409, 422) comes back as the page saying what to fix; show it.
// (htmx 2 does not swap 4xx answers by default.) Loaded again on every boosted visit: listen once.
if (!window.knockoutStaff) {
  window.knockoutStaff = true;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status === 403 || status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
}
