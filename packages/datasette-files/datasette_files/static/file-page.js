// The file page: edit search_text and delete (after a confirmation dialog),
// through the JSON API.

import { postJSON } from "./api.js";

const editForm = document.querySelector("form.files-edit");
if (editForm) {
  const status = editForm.querySelector(".files-form-status");
  const button = editForm.querySelector("button[type=submit]");
  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = editForm.querySelector("textarea").value;
    button.disabled = true;
    status.classList.remove("files-error-text");
    status.textContent = "Saving…";
    try {
      const data = await postJSON(editForm.dataset.updateUrl, { update: { search_text: text } });
      document.querySelector(".files-search-text-value").textContent = data.file.search_text || "—";
      status.textContent = "Saved.";
    } catch (error) {
      status.classList.add("files-error-text");
      status.textContent = `Could not save: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

const dialog = document.querySelector("dialog.files-delete-dialog");
if (dialog) {
  const opener = document.querySelector(".files-delete-open");
  const confirmButton = dialog.querySelector(".files-delete-confirm");
  const status = dialog.querySelector(".files-form-status");
  opener.addEventListener("click", () => {
    status.textContent = "";
    dialog.showModal();
  });
  dialog.querySelector(".files-delete-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => opener.focus());
  confirmButton.addEventListener("click", async () => {
    confirmButton.disabled = true;
    status.textContent = "";
    try {
      await postJSON(dialog.dataset.deleteUrl, {});
      location.href = dialog.dataset.sourceUrl;
    } catch (error) {
      status.textContent = `Could not delete: ${error.message}`;
      confirmButton.disabled = false;
    }
  });
}
