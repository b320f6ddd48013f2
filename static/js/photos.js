// Photo review: a refused review (409 round closed, 422) comes back as the card saying why; show it.
// (htmx 2 does not swap 4xx answers by default.) Loaded again on every boosted visit: listen once.
if (!window.knockoutPhotoReview) {
  window.knockoutPhotoReview = true;
  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status === 409 || status === 422) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
}
