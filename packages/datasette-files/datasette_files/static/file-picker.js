// <datasette-file-picker>: choose the file(s) for a `file` column.
//
// Shows the chosen file, searches the files the actor may browse
// (search.json), and uploads a new one with <datasette-file-uploader> into a
// source the actor may upload to (sources.json says which). Each choice sets
// `value` (a df-… id, or null) and fires a bubbling "datasette-files:pick"
// event with detail.file (null when cleared).
//
// The column's config (column_type.py) arrives as attributes, and the picker
// only offers, and uploads, what the server will accept:
//   source="photos"        search and upload in this source only
//   accept="image/*,.pdf"  files of these types only
//   max-size="20000000"    files of at most this many bytes only
//   multiple="5"           up to 5 files, shown as chips that can be reordered
//                          and removed; `value` is then an array of ids
//
// The bottom of this module plugs the picker into Datasette's insert and edit
// row dialogs through Datasette's JavaScript plugin API (makeColumnField).

import { acceptsFile, parseAccept } from "./accept.js";
import { element, getJSON } from "./api.js";
import { applyChipAction, chipAction, chips, focusAfter } from "./file-chips.js";
import { formatBytes } from "./format.js";
import "./datasette-file.js";

// This module is served from <base_url>-/static-plugins/datasette-files/, so
// the files API is three levels up: this keeps Datasette's base_url.
const FILES_URL = new URL("../../../-/files", import.meta.url).pathname;
const FILE_ID = /^df-[0-9a-z]{26}$/;
const RESULTS = 10;
// Results are filtered here by type and size: ask for more, show RESULTS.
const FILTERED_RESULTS = 50;
const DEBOUNCE_MS = 250;
let pickers = 0;

function positive(value) {
  const number = Number(value);
  return value !== null && Number.isInteger(number) && number > 0 ? number : null;
}

// A stored cell, an attribute or an array → a list of ids.
function idsFrom(value) {
  if (Array.isArray(value)) return value.filter((id) => FILE_ID.test(id));
  const text = typeof value === "string" ? value.trim() : "";
  if (text.startsWith("[")) {
    try {
      return idsFrom(JSON.parse(text));
    } catch (_error) {
      return [];
    }
  }
  return text ? [text] : [];
}

class DatasetteFilePicker extends HTMLElement {
  constructor() {
    super();
    this.ids = [];
    this.known = new Map(); // id → file object, once the API has said
    this.limit = null; // `multiple`: how many files; null holds one
    this.filesUrl = FILES_URL;
    this.results = [];
    this.active = -1;
    this.searchId = 0;
  }

  connectedCallback() {
    if (this.search) return;
    const id = `dfp-${++pickers}`;
    this.filesUrl = this.getAttribute("files-url") || this.filesUrl;
    this.source = this.getAttribute("source") || null;
    this.accept = parseAccept(this.getAttribute("accept"));
    this.maxSize = positive(this.getAttribute("max-size"));
    this.limit = positive(this.getAttribute("multiple"));
    if (this.hasAttribute("value")) this.value = this.getAttribute("value");

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
    // What the column takes, said once under the search box.
    const rules = [
      this.accept.length && `${this.accept.join(", ")} only`,
      this.maxSize && `up to ${formatBytes(this.maxSize)} each`,
      this.source && `from ${this.source}`,
    ].filter(Boolean);
    this.rules = element("p", { id: `${id}-rules`, class: "dfp-rules" }, rules.join(" · "));
    this.rules.hidden = !rules.length;
    const describedBy = [this.getAttribute("description-id"), rules.length && this.rules.id].filter(Boolean).join(" ");
    if (describedBy) this.search.setAttribute("aria-describedby", describedBy);
    this.list = element("ul", { id: `${id}-results`, role: "listbox", class: "dfp-results", "aria-labelledby": searchLabel.id });
    this.list.hidden = true;
    this.status = element("p", { class: "dfp-status", role: "status", "aria-live": "polite" });

    this.uploadToggle = element("button", { type: "button", class: "dfp-upload-toggle", "aria-expanded": "false", "aria-controls": `${id}-upload` }, "Upload a new file");
    this.uploadToggle.hidden = true;
    this.uploadPanel = element("div", { id: `${id}-upload`, class: "dfp-upload" });
    this.uploadPanel.hidden = true;

    const searchRow = element("div", { class: "dfp-search" });
    searchRow.append(searchLabel, this.search, this.list);
    this.replaceChildren(this.current, searchRow, this.rules, this.status, this.uploadToggle, this.uploadPanel);

    this.showCurrent(null);
    this.clearButton.addEventListener("click", () => {
      this.pick(null);
      this.search.focus();
    });
    this.current.addEventListener("click", (event) => this.onChipClick(event));
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

  // A df-… id (null when empty), or with `multiple` an array of them.
  get value() {
    return this.limit ? [...this.ids] : this.ids[0] || null;
  }

  set value(value) {
    this.ids = [...new Set(idsFrom(value))];
    if (this.current) this.showCurrent();
  }

  get full() {
    return Boolean(this.limit) && this.ids.length >= this.limit;
  }

  focus() {
    const removes = this.current.querySelectorAll(".dfp-chip-remove");
    if (this.search.disabled && removes.length) removes[removes.length - 1].focus();
    else this.search.focus();
  }

  // A <datasette-file> for `id`, which tells the picker the file's name.
  fileElement(id, onName) {
    const shown = element("datasette-file", { "file-id": id }, id);
    shown.addEventListener("datasette-files:rendered", (event) => {
      this.known.set(id, event.detail.file);
      onName(event.detail.file.filename);
    });
    const file = this.known.get(id);
    if (file) shown.render(file);
    else if (FILE_ID.test(id)) shown.setAttribute("batch-url", `${this.filesUrl}/batch.json`);
    return shown;
  }

  showCurrent() {
    this.current.replaceChildren();
    this.clearButton.hidden = Boolean(this.limit) || !this.ids.length;
    if (this.limit) {
      this.current.append(...chips(this.ids, { limit: this.limit, nameOf: (id) => this.nameOf(id), fileElement: (id, onName) => this.fileElement(id, onName) }));
    }
    else if (!this.ids.length) this.current.append(element("span", { class: "dfp-none" }, "No file chosen"));
    else {
      const id = this.ids[0];
      this.clearButton.setAttribute("aria-label", `Remove ${id}`);
      const shown = this.fileElement(id, (name) => this.clearButton.setAttribute("aria-label", `Remove ${name}`));
      this.current.append(shown, " ", this.clearButton);
    }
    // A full column takes no more: no search, no upload, until one is removed.
    const hadFocus = this.search.matches(":focus");
    this.search.disabled = this.full;
    this.search.placeholder = this.full ? `Up to ${this.limit} files: remove one to add another` : "Search by name or text";
    if (this.full && hadFocus) this.focus();
    this.updateUploadState();
  }

  onChipClick(event) {
    const chosen = chipAction(event);
    if (!chosen) return;
    const { index, action } = chosen;
    const name = this.nameOf(this.ids[index]);
    const to = applyChipAction(this.ids, index, action);
    const message = action === "remove" ? `Removed ${name}` : `Moved ${name} to position ${to + 1} of ${this.ids.length}`;
    this.changed(null, message);
    if (!focusAfter(this.current, action, to)) this.search.focus();
  }

  nameOf(id) {
    return this.known.get(id)?.filename || id;
  }

  changed(file, message) {
    this.showCurrent();
    this.status.textContent = message;
    this.dispatchEvent(new CustomEvent("datasette-files:pick", { bubbles: true, detail: { file } }));
  }

  pick(file) {
    this.closeList();
    this.search.value = "";
    if (file) this.known.set(file.id, file);
    if (!this.limit) {
      this.ids = file ? [file.id] : [];
      return this.changed(file, file ? `Chose ${file.filename}` : "Removed the file");
    }
    if (!file) return;
    if (this.ids.includes(file.id)) {
      this.status.textContent = `${file.filename} is already chosen`;
      return;
    }
    if (this.full) {
      this.status.textContent = `Up to ${this.limit} files: ${file.filename} was not added`;
      return;
    }
    this.ids.push(file.id);
    this.changed(file, `Added ${file.filename} (${this.ids.length} of ${this.limit})`);
  }

  // Whether the server would take `file` for this column.
  fits(file) {
    if (this.source && file.source_slug !== this.source) return false;
    if (!acceptsFile(this.accept, file.content_type, file.filename)) return false;
    if (this.maxSize && file.size > this.maxSize) return false;
    return !(this.limit && this.ids.includes(file.id));
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
    const filtering = this.accept.length || this.maxSize || this.limit;
    let url = `${this.filesUrl}/search.json?_size=${filtering ? FILTERED_RESULTS : RESULTS}&q=${encodeURIComponent(q)}`;
    if (this.source) url += `&source=${encodeURIComponent(this.source)}`;
    let data;
    try {
      data = await getJSON(url, { signal: this.controller.signal });
    } catch (error) {
      if (error.name === "AbortError" || searchId !== this.searchId) return;
      this.showResults([]);
      this.status.textContent = `Search failed: ${error.message}`;
      return;
    }
    if (searchId !== this.searchId) return;
    const fitting = data.files.filter((file) => this.fits(file));
    this.showResults(fitting.slice(0, RESULTS));
    const count = Math.min(fitting.length, RESULTS);
    const more = data.next || fitting.length > RESULTS ? "+" : "";
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
    for (const [i, option] of options.entries()) option.setAttribute("aria-selected", String(i === this.active));
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
      const data = await getJSON(`${this.filesUrl}/sources.json`);
      this.uploadSources = (data.sources || []).filter(
        (s) => s.can_upload && s.available && s.prepare_url && (!this.source || s.slug === this.source)
      );
    } catch (_error) {
      this.uploadSources = [];
    }
    this.updateUploadState();
  }

  updateUploadState() {
    const canUpload = Boolean(this.uploadSources?.length) && !this.full;
    this.uploadToggle.hidden = !canUpload;
    if (!canUpload && !this.uploadPanel.hidden) this.toggleUpload();
    if (this.uploader && this.limit) this.uploader.setAttribute("max-files", this.limit - this.ids.length);
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
    const uploader = element("datasette-file-uploader", { "prepare-url": source.prepare_url });
    if (this.limit) uploader.setAttribute("max-files", this.limit - this.ids.length);
    else uploader.setAttribute("single", "");
    if (this.accept.length) uploader.setAttribute("accept", this.accept.join(","));
    const limits = [source.max_file_size, this.maxSize].filter(Boolean);
    if (limits.length) uploader.setAttribute("max-file-size", Math.min(...limits));
    if (this.maxSize && this.maxSize === Math.min(...limits)) uploader.setAttribute("limit-by", "this column");
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
    this.uploader?.cancelAll?.();
  }
}

if (!customElements.get("datasette-file-picker")) {
  customElements.define("datasette-file-picker", DatasetteFilePicker);
}

// Datasette's row dialogs ask each JavaScript plugin for a field control
// (makeColumnField); `file` columns get the picker. The dialog's own input
// stays in the form, hidden, and receives the chosen id.
// The column's config becomes the picker's attributes; a `multiple` column
// stores its ids as a JSON array (null when there are none).
function makeColumnField(context) {
  if (context.columnType?.type !== "file") return null;
  const config = context.columnType.config || {};
  let picker;
  return {
    render(field) {
      const wrap = element("div", { class: "dfp-field" });
      picker = element("datasette-file-picker", { "files-url": FILES_URL, "label-id": field.labelId, "description-id": field.descriptionId });
      if (typeof config.source === "string") picker.setAttribute("source", config.source);
      if (config.accept) picker.setAttribute("accept", parseAccept(config.accept).join(","));
      if (positive(config.max_size)) picker.setAttribute("max-size", config.max_size);
      if (positive(config.multiple)) picker.setAttribute("multiple", config.multiple);
      const value = field.getValue();
      if (typeof value === "string" && value) picker.setAttribute("value", value.trim());
      picker.addEventListener("datasette-files:pick", () => {
        const value = picker.value;
        field.setValue(Array.isArray(value) ? (value.length ? JSON.stringify(value) : null) : value);
      });
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
