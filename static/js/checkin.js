// The check-in kiosk: reads a badge's QR code with the camera or from a photo (jsQR, vendored), and
// checks in without reloading the page. Without JavaScript the typed-code form posts as usual.
(function () {
  "use strict";
  const form = document.getElementById("checkin-form");
  if (!form || typeof jsQR !== "function") return;
  const input = document.getElementById("checkin-code");
  const video = document.getElementById("scanner-video");
  const canvas = document.getElementById("scanner-canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const status = document.getElementById("scanner-status");
  const startButton = document.getElementById("scanner-start");
  const stopButton = document.getElementById("scanner-stop");
  const fileInput = document.getElementById("scanner-file");
  const MAX_SIDE = 960; // scan a scaled copy: plenty for a badge, cheap per frame
  const SAME_CODE_PAUSE = 4000; // a badge held in front of the camera counts once
  let stream = null, busy = false, lastCode = null, lastAt = 0;

  document.getElementById("scanner").hidden = false;

  function say(text) { status.textContent = text; }

  // Put the server's fragments in place by id (the result, and the checked-in count).
  function swapIn(html, httpStatus) {
    const template = document.createElement("template");
    template.innerHTML = html;
    let swapped = false;
    for (const element of Array.from(template.content.children)) {
      const old = element.id && document.getElementById(element.id);
      if (old) { element.removeAttribute("hx-swap-oob"); old.replaceWith(element); swapped = true; }
    }
    if (!swapped) say("The server answered " + httpStatus + ": reload the page and try again.");
  }

  async function submit(code) {
    if (busy) return;
    busy = true;
    const data = new FormData(form);
    if (code !== undefined) data.set("code", code);
    try {
      const response = await fetch(form.action, {
        method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
        headers: { "HX-Request": "true" },
      });
      swapIn(await response.text(), response.status);
    } catch (error) {
      say("No connection to the server: check the network and try again.");
    } finally {
      busy = false;
      input.value = "";
      input.focus();
    }
  }

  function decode(source, width, height) {
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
    canvas.width = w;
    canvas.height = h;
    context.drawImage(source, 0, 0, w, h);
    const found = jsQR(context.getImageData(0, 0, w, h).data, w, h, { inversionAttempts: "attemptBoth" });
    return found && found.data ? found.data : null;
  }

  function found(code) {
    const now = Date.now();
    if (code === lastCode && now - lastAt < SAME_CODE_PAUSE) return;
    lastCode = code;
    lastAt = now;
    say("Read a code: " + code);
    submit(code);
  }

  function scanFrame() {
    if (!stream) return;
    if (video.readyState >= 2 && video.videoWidth) {
      const code = decode(video, video.videoWidth, video.videoHeight);
      if (code) found(code);
    }
    setTimeout(scanFrame, 150);
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("This browser gives no camera here (it needs https or localhost): type the code, or read a photo.");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      say("The camera is not available (" + error.name + "): type the code, or read a photo.");
      return;
    }
    video.srcObject = stream;
    video.hidden = false;
    startButton.hidden = true;
    stopButton.hidden = false;
    await video.play();
    say("Camera on: hold a badge's QR code in front of it.");
    scanFrame();
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.hidden = true;
    startButton.hidden = false;
    stopButton.hidden = true;
    say("Camera off.");
  }

  async function readPhoto() {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    let bitmap;
    try {
      bitmap = await createImageBitmap(file); // no blob: URL needed, so the CSP stays as it is
    } catch (error) {
      say("That file isn't an image this browser can read.");
      return;
    }
    const code = decode(bitmap, bitmap.width, bitmap.height);
    fileInput.value = "";
    if (code) { lastCode = null; found(code); } else { say("No QR code found in that photo: try a sharper one."); }
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
  startButton.addEventListener("click", startCamera);
  stopButton.addEventListener("click", stopCamera);
  fileInput.addEventListener("change", readPhoto);
})();
