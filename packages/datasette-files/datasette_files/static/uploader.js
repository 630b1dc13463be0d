// <datasette-file-uploader prepare-url="..." max-file-size="..." [single]
//                          [accept="image/*,.pdf"] [max-files="N"]>
//
// Uploads files by following the instructions the prepare endpoint returns
// (upload-transfer.js), so the same component sends bytes to Datasette, straight
// to S3 with a presigned POST, or to S3 in parts, without knowing the storage.
//
// Each finished upload fires a "datasette-files:uploaded" event (bubbling and
// composed, so a listener on document hears it even from inside a shadow root)
// whose detail.file is the file object from the complete endpoint: one per
// file (docs/events.md). Whenever uploads start or all settle it fires
// "datasette-files:busy" with detail.busy.
// With the `single` attribute it takes one file at a time (the file picker).
// `accept` (as on <input type=file>) and `max-files` (how many more files may
// be in flight or queued) refuse files before any byte is sent.

import { element } from "./api.js";
import { formatBytes, formatSeconds } from "./format.js";
import { UploadFailure, abortError, postJSON, sendFile } from "./upload-transfer.js";
import { acceptsFile, parseAccept } from "./accept.js";

const MAX_FILES_IN_FLIGHT = 4;
const SPEED_WINDOW_MS = 4000;

class UploadItem {
  constructor(file, component) {
    this.file = file;
    this.component = component;
    this.state = "queued";
    this.loaded = 0;
    this.samples = [];
    this.controller = null;
    this.token = null;
    this.abortUrl = null;

    const heading = element(
      "div",
      { class: "dfu-heading" },
      element("span", { class: "dfu-name" }, file.name),
      element("span", { class: "dfu-size" }, formatBytes(file.size))
    );
    this.progress = element("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
    this.status = element("span", { class: "dfu-status" });
    this.cancelButton = element(
      "button",
      { type: "button", class: "dfu-cancel", "aria-label": `Cancel ${file.name}` },
      "Cancel"
    );
    this.retryButton = element(
      "button",
      { type: "button", class: "dfu-retry", "aria-label": `Retry ${file.name}`, hidden: true },
      "Retry"
    );
    const buttons = element("span", { class: "dfu-buttons" }, this.cancelButton, this.retryButton);
    const footer = element("div", { class: "dfu-footer" }, this.status, buttons);
    this.element = element("li", { class: "dfu-item" }, heading, this.progress, footer);
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.retryButton.addEventListener("click", () => this.retry());
    this.setState("queued", "Waiting…");
  }

  setState(state, text, isError = false) {
    this.state = state;
    this.element.dataset.state = state;
    this.status.textContent = text;
    this.status.classList.toggle("dfu-error", isError);
    if (isError) this.status.setAttribute("role", "alert");
    else this.status.removeAttribute("role");
    this.component.update();
  }

  report(loaded) {
    if (this.state !== "uploading") return;
    this.loaded = Math.min(loaded, this.file.size);
    const now = performance.now();
    this.samples.push([now, this.loaded]);
    while (this.samples.length > 2 && now - this.samples[0][0] > SPEED_WINDOW_MS) this.samples.shift();
    const [since, from] = this.samples[0];
    const elapsed = (now - since) / 1000;
    const speed = elapsed > 0.2 ? (this.loaded - from) / elapsed : 0;
    const percent = this.file.size ? (this.loaded / this.file.size) * 100 : 100;
    this.progress.value = percent;
    let text = `${Math.floor(percent)}%`;
    if (speed > 0) {
      text += ` · ${formatBytes(Math.round(speed))}/s · ${formatSeconds((this.file.size - this.loaded) / speed)} left`;
    }
    this.status.textContent = text;
    this.component.update();
  }

  // The whole upload: prepare, send the bytes as told, complete.
  async run() {
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.loaded = 0;
    this.samples = [];
    this.progress.value = 0;
    this.cancelButton.hidden = false;
    this.retryButton.hidden = true;
    this.setState("uploading", "Starting…");
    try {
      if (this.tooMany) {
        throw new UploadFailure(`Too many files: ${this.file.name} was not sent`, { status: 400, permanent: true });
      }
      if (!acceptsFile(this.component.accept, this.file.type, this.file.name)) {
        throw new UploadFailure(`Not accepted: ${this.file.name} is not one of ${this.component.accept.join(", ")}`, {
          status: 415,
          permanent: true,
        });
      }
      const limit = this.component.maxFileSize;
      if (limit && this.file.size > limit) {
        throw new UploadFailure(
          `Too large: ${this.file.name} is ${formatBytes(this.file.size)}; ${this.component.getAttribute("limit-by") || "this source"} accepts files up to ${formatBytes(limit)}`,
          { status: 413, permanent: true }
        );
      }
      // Not abortable: a prepare that reached the server must be answered
      // with an abort, so its pending upload does not linger until expiry.
      const prepared = await postJSON(this.component.prepareUrl, {
        filename: this.file.name,
        content_type: this.file.type || "application/octet-stream",
        size: this.file.size,
      });
      this.token = prepared.upload_token;
      this.abortUrl = prepared.abort_url;
      if (signal.aborted) throw abortError();
      this.report(0);
      const parts = await sendFile(this.file, prepared.upload, this.token, (n) => this.report(n), signal);
      // Past this point the file is being registered: too late to cancel.
      this.cancelButton.hidden = true;
      this.setState("uploading", "Finishing…");
      const completed = await postJSON(prepared.complete_url, { upload_token: this.token, parts });
      this.token = null;
      this.progress.value = 100;
      this.loaded = this.file.size;
      this.cancelButton.hidden = true;
      this.setState("done", "");
      const link = element(
        "a",
        { href: completed.file.url, "aria-label": `Uploaded: view ${this.file.name}` },
        "Uploaded"
      );
      this.status.replaceChildren(link);
      this.component.dispatchEvent(
        new CustomEvent("datasette-files:uploaded", {
          bubbles: true,
          composed: true,
          detail: { file: completed.file },
        })
      );
    } catch (error) {
      if (this.token) this.discard();
      if (error.name === "AbortError" || this.state === "cancelled") return;
      this.cancelButton.hidden = true;
      this.retryButton.hidden = Boolean(error.permanent);
      this.setState("failed", error.message || String(error), true);
    }
  }

  // Tell the server to drop the pending upload and any partial data.
  discard({ keepalive = false } = {}) {
    const token = this.token;
    this.token = null;
    return postJSON(this.abortUrl, { upload_token: token }, { keepalive }).catch(() => {});
  }

  cancel() {
    if (this.state !== "queued" && this.state !== "uploading") return;
    if (this.controller) this.controller.abort();
    if (this.token) this.discard();
    this.cancelButton.hidden = true;
    this.retryButton.hidden = false;
    this.setState("cancelled", "Cancelled");
    this.retryButton.focus();
    this.component.pump();
  }

  retry() {
    this.loaded = 0;
    this.progress.value = 0;
    this.retryButton.hidden = true;
    this.cancelButton.hidden = false;
    this.setState("queued", "Waiting…");
    this.cancelButton.focus();
    this.component.pump();
  }
}

class DatasetteFileUploader extends HTMLElement {
  connectedCallback() {
    if (this.zone) return;
    this.prepareUrl = this.getAttribute("prepare-url");
    this.items = [];
    this.dragDepth = 0;
    const limit = this.maxFileSize;
    this.innerHTML = `
      <div class="dfu-zone">
        <svg class="dfu-icon" aria-hidden="true" viewBox="0 0 24 24" width="40" height="40"><path fill="currentColor" d="M11 15V6.8L8.4 9.4 7 8l5-5 5 5-1.4 1.4L13 6.8V15zm-6 5q-.8 0-1.4-.6Q3 18.8 3 18v-3h2v3h14v-3h2v3q0 .8-.6 1.4-.6.6-1.4.6z"/></svg>
        <p class="dfu-prompt">Drag and drop files here, or</p>
        <button type="button" class="dfu-pick">Choose files…</button>
        <input type="file" hidden>
        <p class="dfu-limit"></p>
      </div>
      <div class="dfu-overall" hidden>
        <progress class="dfu-overall-bar" max="100" value="0" aria-label="All uploads"></progress>
        <p class="dfu-totals"><span class="dfu-summary" role="status" aria-live="polite"></span> <span class="dfu-percent"></span></p>
      </div>
      <ul class="dfu-list" aria-label="Uploads"></ul>`;
    this.zone = this.querySelector(".dfu-zone");
    this.list = this.querySelector(".dfu-list");
    this.overall = this.querySelector(".dfu-overall");
    this.overallBar = this.querySelector(".dfu-overall-bar");
    this.summary = this.querySelector(".dfu-summary");
    this.percent = this.querySelector(".dfu-percent");
    if (limit) this.querySelector(".dfu-limit").textContent = `Up to ${formatBytes(limit)} per file`;
    this.input = this.querySelector("input[type=file]");
    this.input.multiple = !this.single;
    if (this.accept.length) this.input.accept = this.accept.join(",");
    if (this.single) {
      this.querySelector(".dfu-prompt").textContent = "Drag and drop a file here, or";
      this.querySelector(".dfu-pick").textContent = "Choose a file…";
    }
    this.querySelector(".dfu-pick").addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.addFiles(this.input.files);
      this.input.value = "";
    });
    this.zone.addEventListener("dragenter", (event) => {
      if (!this.carriesFiles(event)) return;
      event.preventDefault();
      this.dragDepth += 1;
      this.zone.classList.add("dfu-over");
    });
    this.zone.addEventListener("dragover", (event) => {
      if (!this.carriesFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    this.zone.addEventListener("dragleave", () => {
      this.dragDepth = Math.max(0, this.dragDepth - 1);
      if (!this.dragDepth) this.zone.classList.remove("dfu-over");
    });
    this.zone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.dragDepth = 0;
      this.zone.classList.remove("dfu-over");
      this.addFiles(event.dataTransfer.files);
    });
    // A file dropped just beside the zone must not replace the page.
    this.guardDrop = (event) => {
      if (this.carriesFiles(event) && !this.zone.contains(event.target)) event.preventDefault();
    };
    window.addEventListener("dragover", this.guardDrop);
    window.addEventListener("drop", this.guardDrop);
    this.warnOnLeave = (event) => {
      if (this.busy()) event.preventDefault();
    };
    window.addEventListener("beforeunload", this.warnOnLeave);
    // Leaving anyway: release the server-side pending uploads now rather
    // than when they expire.
    this.releaseOnLeave = () => {
      for (const item of this.items) if (item.token) item.discard({ keepalive: true });
    };
    window.addEventListener("pagehide", this.releaseOnLeave);
  }

  disconnectedCallback() {
    window.removeEventListener("dragover", this.guardDrop);
    window.removeEventListener("drop", this.guardDrop);
    window.removeEventListener("beforeunload", this.warnOnLeave);
    window.removeEventListener("pagehide", this.releaseOnLeave);
  }

  get single() {
    return this.hasAttribute("single");
  }

  get maxFileSize() {
    const value = Number(this.getAttribute("max-file-size"));
    return Number.isFinite(value) && value > 0 ? value : null;
  }

  // "image/*", "image/png" or ".pdf", as <input accept> reads them.
  get accept() {
    return parseAccept(this.getAttribute("accept"));
  }

  carriesFiles(event) {
    return event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  }

  busy() {
    return this.items.some((item) => item.state === "queued" || item.state === "uploading");
  }

  // Cancel everything not finished yet (e.g. the form it sits in went away).
  cancelAll() {
    for (const item of this.items) item.cancel();
  }

  addFiles(files) {
    if (this.single) files = Array.from(files).slice(0, 1);
    const maxFiles = this.getAttribute("max-files");
    let room = maxFiles === null ? Infinity : Number(maxFiles) - this.items.filter((item) => item.state === "queued" || item.state === "uploading").length;
    for (const file of files) {
      const item = new UploadItem(file, this);
      // Files past the limit get a row that says so; their upload never
      // starts. Files refused for their type or size take no room.
      const limit = this.maxFileSize;
      const refused = !acceptsFile(this.accept, file.type, file.name) || (limit && file.size > limit);
      if (!refused) item.tooMany = room-- <= 0;
      this.items.push(item);
      this.list.append(item.element);
    }
    this.update();
    this.pump();
  }

  pump() {
    let running = this.items.filter((item) => item.state === "uploading").length;
    for (const item of this.items) {
      if (running >= MAX_FILES_IN_FLIGHT) break;
      if (item.state === "queued") {
        running += 1;
        item.run().finally(() => this.pump());
      }
    }
    this.update();
  }

  // The overall bar and summary. The summary is a live region, so it only
  // changes when a count does, not on every progress event.
  update() {
    if (!this.summary) return;
    const busy = this.busy();
    if (busy !== Boolean(this.wasBusy)) {
      this.wasBusy = busy;
      this.dispatchEvent(new CustomEvent("datasette-files:busy", { bubbles: true, detail: { busy } }));
    }
    const counts = { done: 0, uploading: 0, queued: 0, failed: 0, cancelled: 0 };
    let total = 0;
    let loaded = 0;
    for (const item of this.items) {
      counts[item.state] += 1;
      // The overall bar measures what is still meant to arrive.
      if (item.state === "cancelled" || item.state === "failed") continue;
      total += item.file.size;
      loaded += item.state === "done" ? item.file.size : item.loaded;
    }
    const active = counts.done + counts.uploading + counts.queued;
    this.overall.hidden = this.items.length === 0;
    const parts = [`${counts.done} of ${this.items.length} uploaded`];
    if (counts.uploading) parts.push(`${counts.uploading} in progress`);
    if (counts.queued) parts.push(`${counts.queued} waiting`);
    if (counts.failed) parts.push(`${counts.failed} failed`);
    if (counts.cancelled) parts.push(`${counts.cancelled} cancelled`);
    const text = parts.join(", ");
    if (this.summary.textContent !== text) this.summary.textContent = text;
    const percent = total ? (loaded / total) * 100 : active ? 100 : 0;
    this.overallBar.value = percent;
    this.percent.textContent = total ? `${Math.floor(percent)}% of ${formatBytes(total)}` : "";
  }
}

customElements.define("datasette-file-uploader", DatasetteFileUploader);
