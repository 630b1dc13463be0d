// The source page: files uploaded with the embedded uploader appear at the
// top of the listing straight away.

import { formatBytes } from "./format.js";

function cell(className, label, ...children) {
  const td = document.createElement("td");
  if (className) td.className = className;
  if (label) td.dataset.label = label;
  td.append(...children);
  return td;
}

document.addEventListener("datasette-files:uploaded", (event) => {
  const file = event.detail.file;
  const listing = document.querySelector(".files-listing");
  const body = listing && listing.querySelector("tbody");
  if (!body) return;
  const thumb = document.createElement("img");
  thumb.src = file.thumbnail_url;
  if (file.thumbnail_srcset) {
    thumb.srcset = file.thumbnail_srcset;
    thumb.sizes = "32px";
  }
  thumb.alt = "";
  thumb.width = 32;
  thumb.height = 32;
  const link = document.createElement("a");
  link.href = file.url;
  link.textContent = file.filename;
  const time = document.createElement("time");
  time.dateTime = file.created_at;
  time.textContent = file.created_at.slice(0, 16).replace("T", " ");
  const row = document.createElement("tr");
  row.className = "files-new-row";
  row.append(
    cell("files-thumb", null, thumb),
    cell("files-name", null, link),
    cell("files-num", null, formatBytes(file.size)),
    cell(null, null, file.content_type || ""),
    cell(null, "Uploaded by", file.uploaded_by || ""),
    cell("files-nowrap", "Uploaded", time)
  );
  body.prepend(row);
  listing.hidden = false;
  const empty = document.querySelector(".files-empty");
  if (empty) empty.remove();
});
