// <datasette-file-picker>: choose a file for a `file` column.
//
// Shows the chosen file, searches the files the actor may browse
// (search.json), and uploads a new one with <datasette-file-uploader> into a
// source the actor may upload to (sources.json says which). Each choice sets
// `value` (a df-… id, or null) and fires a bubbling "datasette-files:pick"
// event with detail.file (null when cleared).
//
// The bottom of this module plugs the picker into Datasette's insert and edit
// row dialogs through Datasette's JavaScript plugin API (makeColumnField).

import { formatBytes } from "./format.js";
import "./datasette-file.js";

// This module is served from <base_url>-/static-plugins/datasette-files/, so
// the files API is three levels up: this keeps Datasette's base_url.
const FILES_URL = new URL("../../../-/files", import.meta.url).pathname;
const FILE_ID = /^df-[0-9a-z]{26}$/;
const RESULTS = 10;
const DEBOUNCE_MS = 250;
let pickers = 0;

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

class DatasetteFilePicker extends HTMLElement {
  constructor() {
    super();
    this.value = null;
    this.filesUrl = FILES_URL;
    this.results = [];
    this.active = -1;
    this.searchId = 0;
  }

  connectedCallback() {
    if (this.search) return;
    const id = `dfp-${++pickers}`;
    this.filesUrl = this.getAttribute("files-url") || this.filesUrl;
    if (this.hasAttribute("value")) this.value = this.getAttribute("value") || null;

    this.current = element("div", { class: "dfp-current" });
    this.clearButton = element("button", { type: "button", class: "dfp-clear" }, "Remove");

    const searchLabel = element("label", { for: `${id}-q`, id: `${id}-q-label`, class: "dfp-label" }, "Find a file");
    this.search = element("input", {
      type: "search",
      id: `${id}-q`,
      role: "combobox",
      autocomplete: "off",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": `${id}-results`,
      placeholder: "Search by name or text",
    });
    // "attachment Find a file": the column's own label first, when there is one.
    const labelledBy = [this.getAttribute("label-id"), searchLabel.id].filter(Boolean).join(" ");
    this.search.setAttribute("aria-labelledby", labelledBy);
    if (this.getAttribute("description-id")) {
      this.search.setAttribute("aria-describedby", this.getAttribute("description-id"));
    }
    this.list = element("ul", { id: `${id}-results`, role: "listbox", class: "dfp-results", "aria-labelledby": searchLabel.id });
    this.list.hidden = true;
    this.status = element("p", { class: "dfp-status", role: "status", "aria-live": "polite" });

    this.uploadToggle = element("button", { type: "button", class: "dfp-upload-toggle", "aria-expanded": "false", "aria-controls": `${id}-upload` }, "Upload a new file");
    this.uploadToggle.hidden = true;
    this.uploadPanel = element("div", { id: `${id}-upload`, class: "dfp-upload" });
    this.uploadPanel.hidden = true;

    const searchRow = element("div", { class: "dfp-search" });
    searchRow.append(searchLabel, this.search, this.list);
    this.replaceChildren(this.current, searchRow, this.status, this.uploadToggle, this.uploadPanel);

    this.showCurrent(null);
    this.clearButton.addEventListener("click", () => {
      this.pick(null);
      this.search.focus();
    });
    this.search.addEventListener("input", () => this.scheduleSearch());
    this.search.addEventListener("keydown", (event) => this.onKeydown(event));
    this.search.addEventListener("blur", () => this.closeList());
    // Keep focus in the search box while an option is clicked.
    this.list.addEventListener("pointerdown", (event) => event.preventDefault());
    this.list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.pick(this.results[Number(option.dataset.index)]);
    });
    this.uploadToggle.addEventListener("click", () => this.toggleUpload());
    // The file's link opens in a new tab: following it must not lose the form.
    this.current.addEventListener("click", (event) => {
      const link = event.target.closest("a");
      if (link) Object.assign(link, { target: "_blank", rel: "noopener" });
    });
    this.loadUploadSources();
  }

  focus() {
    this.search.focus();
  }

  // Show `file` (an object from the API), or else the id in `value`.
  showCurrent(file) {
    this.current.replaceChildren();
    this.clearButton.hidden = !this.value;
    if (!this.value) {
      this.current.append(element("span", { class: "dfp-none" }, "No file chosen"));
      return;
    }
    const shown = element("datasette-file", { "file-id": this.value }, this.value);
    this.clearButton.setAttribute("aria-label", `Remove ${this.value}`);
    shown.addEventListener("datasette-files:rendered", (event) => {
      this.clearButton.setAttribute("aria-label", `Remove ${event.detail.file.filename}`);
    });
    if (file) shown.render(file);
    else if (FILE_ID.test(this.value)) shown.setAttribute("batch-url", `${this.filesUrl}/batch.json`);
    this.current.append(shown, " ", this.clearButton);
  }

  pick(file) {
    this.value = file ? file.id : null;
    this.showCurrent(file);
    this.closeList();
    this.search.value = "";
    this.status.textContent = file ? `Chose ${file.filename}` : "Removed the file";
    this.dispatchEvent(new CustomEvent("datasette-files:pick", { bubbles: true, detail: { file } }));
  }

  // Search

  scheduleSearch() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.runSearch(), DEBOUNCE_MS);
  }

  async runSearch() {
    clearTimeout(this.timer);
    const searchId = ++this.searchId;
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    const q = this.search.value.trim();
    const url = `${this.filesUrl}/search.json?_size=${RESULTS}&q=${encodeURIComponent(q)}`;
    let data;
    try {
      const response = await fetch(url, { credentials: "same-origin", signal: this.controller.signal });
      data = await response.json();
      if (!response.ok || !data.ok) throw new Error((data.errors || [response.statusText]).join("; "));
    } catch (error) {
      if (error.name === "AbortError" || searchId !== this.searchId) return;
      this.showResults([]);
      this.status.textContent = `Search failed: ${error.message}`;
      return;
    }
    if (searchId !== this.searchId) return;
    this.showResults(data.files);
    const count = data.files.length;
    const more = data.next ? "+" : "";
    this.status.textContent = count ? `${count}${more} file${count === 1 ? "" : "s"} found` : "No files match";
  }

  showResults(files) {
    this.results = files;
    this.active = -1;
    this.list.replaceChildren(
      ...files.map((file, index) => {
        const option = element("li", { role: "option", id: `${this.list.id}-${index}`, "aria-selected": "false", class: "dfp-option" });
        option.dataset.index = index;
        const thumb = element("img", { src: file.thumbnail_url, srcset: file.thumbnail_srcset || "", sizes: "32px", alt: "", width: "32", height: "32", loading: "lazy" });
        const name = element("span", { class: "dfp-option-name" }, file.filename);
        const details = element("span", { class: "dfp-option-details" }, `${formatBytes(file.size)} · ${file.source_slug}`);
        const text = element("span", { class: "dfp-option-text" });
        text.append(name, details);
        option.append(thumb, text);
        return option;
      })
    );
    this.setOpen(files.length > 0);
  }

  setOpen(open) {
    this.list.hidden = !open;
    this.search.setAttribute("aria-expanded", String(open));
    if (!open) this.search.removeAttribute("aria-activedescendant");
  }

  closeList() {
    this.setOpen(false);
  }

  moveTo(index) {
    const options = this.list.querySelectorAll("[role=option]");
    if (!options.length) return;
    this.active = (index + options.length) % options.length;
    options.forEach((option, i) => option.setAttribute("aria-selected", String(i === this.active)));
    const option = options[this.active];
    this.search.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  onKeydown(event) {
    const open = !this.list.hidden;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!open) {
        if (this.results.length) this.setOpen(true);
        else return void this.runSearch();
      }
      this.moveTo(this.active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter") {
      // Enter chooses or searches; it never submits the row form.
      event.preventDefault();
      if (open && this.active >= 0) this.pick(this.results[this.active]);
      else this.runSearch();
    } else if (event.key === "Escape" && (open || this.search.value)) {
      // Handled here, so the dialog around the picker stays open.
      event.preventDefault();
      if (open) this.closeList();
      else this.search.value = "";
    }
  }

  // Upload

  async loadUploadSources() {
    try {
      const response = await fetch(`${this.filesUrl}/sources.json`, { credentials: "same-origin" });
      const data = await response.json();
      this.uploadSources = (data.sources || []).filter((s) => s.can_upload && s.available && s.prepare_url);
    } catch (error) {
      this.uploadSources = [];
    }
    this.uploadToggle.hidden = this.uploadSources.length === 0;
  }

  toggleUpload() {
    const open = this.uploadPanel.hidden;
    this.uploadPanel.hidden = !open;
    this.uploadToggle.setAttribute("aria-expanded", String(open));
    if (open && !this.building) this.building = this.buildUploader();
  }

  async buildUploader() {
    await import("./uploader.js");
    if (this.uploadSources.length > 1) {
      const label = element("label", { class: "dfp-label" }, "Upload to ");
      this.sourceSelect = element("select");
      for (const source of this.uploadSources) {
        this.sourceSelect.append(element("option", { value: source.slug }, source.slug));
      }
      this.sourceSelect.addEventListener("change", () => this.mountUploader());
      label.append(this.sourceSelect);
      this.uploadPanel.append(label);
    }
    this.mountUploader();
  }

  // An uploader for the chosen source (it reads its source once, when it starts).
  mountUploader() {
    const slug = this.sourceSelect ? this.sourceSelect.value : this.uploadSources[0].slug;
    const source = this.uploadSources.find((s) => s.slug === slug);
    const uploader = element("datasette-file-uploader", { single: "", "prepare-url": source.prepare_url, "source-url": source.url });
    if (source.max_file_size) uploader.setAttribute("max-file-size", source.max_file_size);
    uploader.addEventListener("datasette-files:uploaded", (event) => {
      event.stopPropagation();
      this.pick(event.detail.file);
    });
    uploader.addEventListener("datasette-files:busy", (event) => {
      event.stopPropagation();
      // While a file is on its way, the form around the picker cannot be saved.
      this.search.setCustomValidity(event.detail.busy ? "Wait for the upload to finish" : "");
      if (this.sourceSelect) this.sourceSelect.disabled = event.detail.busy;
    });
    if (this.uploader) this.uploader.replaceWith(uploader);
    else this.uploadPanel.append(uploader);
    this.uploader = uploader;
  }

  cancelUploads() {
    if (this.uploader && this.uploader.cancelAll) this.uploader.cancelAll();
  }
}

if (!customElements.get("datasette-file-picker")) {
  customElements.define("datasette-file-picker", DatasetteFilePicker);
}

// Datasette's row dialogs ask each JavaScript plugin for a field control
// (makeColumnField); `file` columns get the picker. The dialog's own input
// stays in the form, hidden, and receives the chosen id.
function makeColumnField(context) {
  if (!context.columnType || context.columnType.type !== "file") return null;
  let picker;
  return {
    render(field) {
      const wrap = element("div", { class: "dfp-field" });
      picker = element("datasette-file-picker", { "files-url": FILES_URL, "label-id": field.labelId, "description-id": field.descriptionId });
      const value = field.getValue();
      if (typeof value === "string" && value) picker.setAttribute("value", value.trim());
      picker.addEventListener("datasette-files:pick", () => field.setValue(picker.value));
      field.input.type = "hidden";
      wrap.append(field.input, picker);
      return wrap;
    },
    focus() {
      picker.focus();
    },
    destroy() {
      picker.cancelUploads();
    },
  };
}

function register(manager) {
  manager.registerPlugin("datasette-files", { version: "1.0", makeColumnField });
}

if (window.__DATASETTE__) register(window.__DATASETTE__);
else document.addEventListener("datasette_init", (event) => register(event.detail));
