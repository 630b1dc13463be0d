// <datasette-file-uploader prepare-url="..." source-url="...">
//
// Uploads files by following the instructions the prepare endpoint returns,
// so the same component sends bytes to Datasette (raw body), straight to S3
// (presigned POST) or to S3 in parts, without knowing the storage type.

const MAX_FILES_IN_FLIGHT = 4;
const MAX_PARTS_IN_FLIGHT = 4;
const PART_RETRIES = 3;

async function postJSON(url, body) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new Error("Could not reach the server");
  }
  const data = await response.json().catch(() => null);
  if (!data || !data.ok) {
    const message = data && data.errors ? data.errors.join("; ") : response.statusText;
    const error = new Error(message || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return data;
}

// XMLHttpRequest, because fetch() cannot report upload progress.
function send(method, url, body, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr);
      } else {
        let message = `Upload failed (HTTP ${xhr.status})`;
        try {
          const data = JSON.parse(xhr.responseText);
          if (data.errors) message = data.errors.join("; ");
        } catch (_) {
          // S3 answers XML; keep the generic message.
        }
        const error = new Error(message);
        error.status = xhr.status;
        reject(error);
      }
    };
    xhr.onerror = () => reject(new Error("Network error during upload"));
    xhr.onabort = () => reject(new DOMException("Cancelled", "AbortError"));
    if (signal) signal.addEventListener("abort", () => xhr.abort());
    xhr.send(body);
  });
}

function formatBytes(bytes) {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatSeconds(seconds) {
  if (!isFinite(seconds)) return "";
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m ${Math.ceil(seconds % 60)}s`;
}

class UploadItem {
  constructor(file, component) {
    this.file = file;
    this.component = component;
    this.state = "queued";
    this.loaded = 0;
    this.started = 0;
    this.controller = null;
    this.token = null;
    this.abortUrl = null;
    this.element = document.createElement("li");
    this.element.className = "dfu-item";
    this.element.innerHTML = `
      <div class="dfu-name"></div>
      <progress max="100" value="0" aria-label=""></progress>
      <div class="dfu-status" role="status"></div>
      <div class="dfu-buttons">
        <button type="button" class="dfu-cancel">Cancel</button>
        <button type="button" class="dfu-retry" hidden>Retry</button>
      </div>`;
    this.element.querySelector(".dfu-name").textContent =
      `${file.name} (${formatBytes(file.size)})`;
    this.progress = this.element.querySelector("progress");
    this.progress.setAttribute("aria-label", `Upload progress for ${file.name}`);
    this.status = this.element.querySelector(".dfu-status");
    this.cancelButton = this.element.querySelector(".dfu-cancel");
    this.retryButton = this.element.querySelector(".dfu-retry");
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.retryButton.addEventListener("click", () => this.retry());
    this.setStatus("Queued");
  }

  setStatus(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("dfu-error", isError);
  }

  report(loaded) {
    this.loaded = Math.min(loaded, this.file.size);
    const percent = this.file.size ? (this.loaded / this.file.size) * 100 : 100;
    this.progress.value = percent;
    const elapsed = (performance.now() - this.started) / 1000;
    const speed = elapsed > 0 ? this.loaded / elapsed : 0;
    const left = speed > 0 ? (this.file.size - this.loaded) / speed : Infinity;
    this.setStatus(
      `${Math.floor(percent)}% · ${formatBytes(Math.round(speed))}/s · ${formatSeconds(left)} left`
    );
    this.component.updateSummary();
  }

  async run() {
    this.state = "uploading";
    this.controller = new AbortController();
    this.started = performance.now();
    this.cancelButton.hidden = false;
    this.retryButton.hidden = true;
    this.setStatus("Starting…");
    try {
      const prepared = await postJSON(this.component.prepareUrl, {
        filename: this.file.name,
        content_type: this.file.type || "application/octet-stream",
        size: this.file.size,
      });
      this.token = prepared.upload_token;
      this.abortUrl = prepared.abort_url;
      const parts = await this.sendBytes(prepared);
      const completed = await postJSON(prepared.complete_url, {
        upload_token: this.token,
        parts,
      });
      this.token = null;
      this.state = "done";
      this.progress.value = 100;
      const link = document.createElement("a");
      link.href = completed.file.url;
      link.textContent = "Uploaded";
      this.status.replaceChildren(link);
      this.cancelButton.hidden = true;
    } catch (error) {
      if (error.name === "AbortError") return;
      this.state = "failed";
      this.setStatus(error.message, true);
      this.cancelButton.hidden = true;
      this.retryButton.hidden = false;
      if (this.token) this.discard();
    }
    this.component.updateSummary();
  }

  async sendBytes(prepared) {
    const upload = prepared.upload;
    const signal = this.controller.signal;
    if (upload.mode === "multipart") {
      return this.sendParts(prepared);
    }
    let body = this.file;
    if (upload.mode === "direct" && upload.method === "POST") {
      body = new FormData();
      for (const [name, value] of Object.entries(upload.fields || {})) {
        body.append(name, value);
      }
      body.append("file", this.file);
    }
    await send(upload.method, upload.url, body, upload.headers, (n) => this.report(n), signal);
    return null;
  }

  async sendParts(prepared) {
    const upload = prepared.upload;
    const count = upload.part_count;
    const partLoaded = new Map();
    const etags = [];
    let next = 1;
    const worker = async () => {
      while (next <= count) {
        const number = next++;
        const start = (number - 1) * upload.part_size;
        const blob = this.file.slice(start, Math.min(start + upload.part_size, this.file.size));
        for (let attempt = 1; ; attempt++) {
          try {
            const urls = await postJSON(upload.parts_url, {
              upload_token: this.token,
              part_numbers: [number],
            });
            const xhr = await send("PUT", urls.urls[String(number)], blob, {}, (n) => {
              partLoaded.set(number, n);
              let total = 0;
              for (const value of partLoaded.values()) total += value;
              this.report(total);
            }, this.controller.signal);
            etags.push({ PartNumber: number, ETag: xhr.getResponseHeader("ETag") });
            break;
          } catch (error) {
            if (error.name === "AbortError" || attempt >= PART_RETRIES) throw error;
            partLoaded.set(number, 0);
            await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MAX_PARTS_IN_FLIGHT, count) }, worker));
    etags.sort((a, b) => a.PartNumber - b.PartNumber);
    return etags;
  }

  discard() {
    const token = this.token;
    this.token = null;
    return postJSON(this.abortUrl, { upload_token: token }).catch(() => {});
  }

  async cancel() {
    if (this.state === "queued") {
      this.state = "cancelled";
    } else if (this.state === "uploading") {
      this.state = "cancelled";
      this.controller.abort();
      if (this.token) await this.discard();
    }
    this.cancelButton.hidden = true;
    this.retryButton.hidden = false;
    this.setStatus("Cancelled");
    this.component.updateSummary();
    this.component.pump();
  }

  retry() {
    this.state = "queued";
    this.loaded = 0;
    this.progress.value = 0;
    this.retryButton.hidden = true;
    this.cancelButton.hidden = false;
    this.setStatus("Queued");
    this.component.pump();
  }
}

class DatasetteFileUploader extends HTMLElement {
  connectedCallback() {
    this.prepareUrl = this.getAttribute("prepare-url");
    this.items = [];
    this.innerHTML = `
      <div class="dfu-zone">
        <p>Drag files here, or</p>
        <label class="dfu-pick">
          <span>Choose files</span>
          <input type="file" multiple>
        </label>
      </div>
      <p class="dfu-summary" aria-live="polite"></p>
      <ul class="dfu-list"></ul>`;
    this.zone = this.querySelector(".dfu-zone");
    this.list = this.querySelector(".dfu-list");
    this.summary = this.querySelector(".dfu-summary");
    const input = this.querySelector("input[type=file]");
    input.addEventListener("change", () => {
      this.addFiles(input.files);
      input.value = "";
    });
    this.zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      this.zone.classList.add("dfu-over");
    });
    this.zone.addEventListener("dragleave", () => this.zone.classList.remove("dfu-over"));
    this.zone.addEventListener("drop", (event) => {
      event.preventDefault();
      this.zone.classList.remove("dfu-over");
      this.addFiles(event.dataTransfer.files);
    });
  }

  addFiles(files) {
    for (const file of files) {
      const item = new UploadItem(file, this);
      this.items.push(item);
      this.list.append(item.element);
    }
    this.updateSummary();
    this.pump();
  }

  pump() {
    let running = this.items.filter((item) => item.state === "uploading").length;
    for (const item of this.items) {
      if (running >= MAX_FILES_IN_FLIGHT) break;
      if (item.state === "queued") {
        running += 1;
        item.run().then(() => this.pump());
      }
    }
  }

  updateSummary() {
    const count = (state) => this.items.filter((item) => item.state === state).length;
    const parts = [`${count("done")} of ${this.items.length} uploaded`];
    if (count("uploading")) parts.push(`${count("uploading")} in progress`);
    if (count("failed")) parts.push(`${count("failed")} failed`);
    if (count("cancelled")) parts.push(`${count("cancelled")} cancelled`);
    this.summary.textContent = parts.join(", ");
  }
}

customElements.define("datasette-file-uploader", DatasetteFileUploader);
