// The source page: files uploaded with the embedded uploader appear at the
// top of the listing straight away, in a row cloned from the page's
// <template id="files-row-template"> (the same markup as the rows around it).

import { formatBytes } from "./format.js";

document.addEventListener("datasette-files:uploaded", (event) => {
  const file = event.detail.file;
  const listing = document.querySelector(".files-listing");
  const body = listing?.querySelector("tbody");
  const template = document.getElementById("files-row-template");
  if (!body || !template) return;
  const row = template.content.firstElementChild.cloneNode(true);
  row.classList.add("files-new-row");
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  const thumb = field("thumbnail_url");
  thumb.src = file.thumbnail_url;
  if (file.thumbnail_srcset) thumb.srcset = file.thumbnail_srcset;
  const link = field("filename");
  link.href = file.url;
  link.textContent = file.filename;
  field("size").textContent = formatBytes(file.size);
  field("content_type").textContent = file.content_type || "";
  field("uploaded_by").textContent = file.uploaded_by || "";
  const time = field("created_at");
  time.dateTime = file.created_at;
  time.textContent = file.created_at.slice(0, 16).replace("T", " ");
  body.prepend(row);
  listing.hidden = false;
  document.querySelector(".files-empty")?.remove();
});
