// <datasette-file file-id="df-..." batch-url="/-/files/batch.json">df-...</datasette-file>
//
// Every element on the page asks for its file; the requests are gathered and
// sent as batch.json calls of up to 100 ids. Files the actor may not browse
// are not returned, so those cells keep showing the plain id. Once it knows its
// file, an element fires a bubbling "datasette-files:rendered" (detail.file).

import { element, getJSON } from "./api.js";
import { formatBytes } from "./format.js";

const BATCH_SIZE = 100;
const waiting = new Map(); // batch URL -> Map(id -> [elements])
let scheduled = false;

async function flush() {
  scheduled = false;
  const batches = [...waiting.entries()];
  waiting.clear();
  for (const [url, byId] of batches) {
    const ids = [...byId.keys()];
    for (let i = 0; i < ids.length; i += BATCH_SIZE) {
      const chunk = ids.slice(i, i + BATCH_SIZE);
      const query = chunk.map((id) => `id=${encodeURIComponent(id)}`).join("&");
      let files;
      try {
        files = (await getJSON(`${url}?${query}`)).files || {};
      } catch (_error) {
        continue;
      }
      for (const id of chunk) {
        const file = files[id];
        if (!file) continue;
        for (const element of byId.get(id)) element.render(file);
      }
    }
  }
}

class DatasetteFile extends HTMLElement {
  connectedCallback() {
    const id = this.getAttribute("file-id");
    const url = this.getAttribute("batch-url");
    if (!id || !url || this.dataset.loaded) return;
    if (!waiting.has(url)) waiting.set(url, new Map());
    const byId = waiting.get(url);
    if (!byId.has(id)) byId.set(id, []);
    byId.get(id).push(this);
    if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  }

  render(file) {
    this.dataset.loaded = "1";
    const link = element(
      "a",
      { href: file.url, class: "datasette-file-link" },
      // srcset: the small variant, not the full thumbnail, for a 24px icon.
      element("img", {
        src: file.thumbnail_url,
        srcset: file.thumbnail_srcset || null,
        sizes: file.thumbnail_srcset ? "24px" : null,
        alt: "",
        width: 24,
        height: 24,
        loading: "lazy",
      }),
      " ",
      element("span", { class: "datasette-file-name" }, file.filename)
    );
    const size = element("span", { class: "datasette-file-size" }, formatBytes(file.size));
    this.replaceChildren(link, " ", size);
    this.title = `${file.filename} (${file.content_type || "unknown type"})`;
    this.dispatchEvent(new CustomEvent("datasette-files:rendered", { bubbles: true, detail: { file } }));
  }
}

if (!customElements.get("datasette-file")) {
  customElements.define("datasette-file", DatasetteFile);
}
