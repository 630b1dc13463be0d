// The source page's "Sync now" button: starts a sync of the source and shows
// its progress live, polling the sync's JSON until it has finished.

const POLL_MS = 500;

function describe(job) {
  if (!job) return "";
  const n = (value) => (value === null || value === undefined ? "?" : value.toLocaleString());
  let text =
    `${n(job.seen)} seen, ${n(job.registered)} registered, ${n(job.updated)} updated, ` +
    `${n(job.skipped)} unchanged, ${n(job.missing)} missing`;
  if (job.removed) text += `, ${n(job.removed)} removed`;
  if (job.rate) text += ` (${Math.round(job.rate).toLocaleString()}/s)`;
  if (job.status === "running") return `Syncing: ${text}…`;
  if (job.status === "finished") return `Sync finished: ${text}.`;
  return `Sync ${job.status}${job.error ? ` (${job.error})` : ""}: ${text}.`;
}

function setUp(section) {
  const url = section.dataset.syncUrl;
  const button = section.querySelector(".files-sync-start");
  const prune = section.querySelector(".files-sync-prune");
  const status = section.querySelector(".files-sync-status");
  let polling = false;

  function show(job, error) {
    status.textContent = error || describe(job);
    status.classList.toggle("message-error", Boolean(error));
    section.dataset.state = job ? job.status : "";
    button.disabled = Boolean(job && job.status === "running");
  }

  async function poll() {
    if (polling) return;
    polling = true;
    try {
      while (true) {
        const response = await fetch(`${url}.json`, { headers: { accept: "application/json" } });
        const body = await response.json();
        if (!response.ok) {
          show(null, (body.errors || ["Could not read the sync's progress"]).join(" "));
          return;
        }
        show(body.job);
        if (!body.job || body.job.finished) return;
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } catch (error) {
      show(null, `Could not read the sync's progress: ${error.message}`);
    } finally {
      polling = false;
    }
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Starting the sync…";
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ prune: prune.checked }),
      });
      const body = await response.json();
      if (response.status === 409) {
        status.textContent = "A sync of this source is already running.";
      } else if (!response.ok) {
        show(null, (body.errors || ["The sync could not start"]).join(" "));
        button.disabled = false;
        return;
      } else {
        show(body.job);
      }
      poll();
    } catch (error) {
      show(null, `The sync could not start: ${error.message}`);
      button.disabled = false;
    }
  });

  // A sync already under way (started elsewhere, or before a reload).
  poll();
}

for (const section of document.querySelectorAll(".files-sync[data-sync-url]")) {
  setUp(section);
}
