// The import job page: poll the job's JSON until it finishes, updating the
// status, counts, progress bar, error and the link to the new table.

import { getJSON } from "./api.js";
import { formatBytes } from "./format.js";

const job = document.querySelector(".files-import-job");

function show(data) {
  job.dataset.status = data.status;
  job.querySelector(".files-import-state").textContent = data.status;
  job.querySelector(".files-import-rows").textContent = data.rows_imported.toLocaleString("en");
  job.querySelector(".files-import-bytes").textContent = formatBytes(data.bytes_read);
  const bar = job.querySelector(".files-import-progress");
  if (data.progress !== null) bar.value = data.progress;
  const error = job.querySelector(".files-import-error");
  error.textContent = data.error || "";
  error.hidden = !data.error;
  const done = job.querySelector(".files-import-done");
  if (data.table_url) done.querySelector("a").href = data.table_url;
  done.hidden = !data.table_url;
}

async function poll() {
  let delay = 1000;
  try {
    const data = await getJSON(job.dataset.jsonUrl);
    show(data.job);
    if (data.job.finished) return;
  } catch (error) {
    // Unreachable: the server may be restarting; keep trying, more slowly.
    if (error.status === null) delay = 3000;
  }
  setTimeout(poll, delay);
}

if (job) poll();
