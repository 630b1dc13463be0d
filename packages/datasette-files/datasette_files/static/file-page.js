// Edit search_text and delete from the file page, via the JSON API.
async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ ok: false, errors: [response.statusText] }));
  if (!data.ok) throw new Error((data.errors || ["Request failed"]).join("; "));
  return data;
}

const editForm = document.querySelector("form.files-edit");
if (editForm) {
  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = editForm.querySelector("textarea").value;
    try {
      await post(editForm.dataset.updateUrl, { update: { search_text: text } });
      location.reload();
    } catch (error) {
      alert(error.message);
    }
  });
}

const deleteForm = document.querySelector("form.files-delete");
if (deleteForm) {
  deleteForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!confirm("Delete this file? This cannot be undone.")) return;
    try {
      await post(deleteForm.dataset.deleteUrl, {});
      location.href = deleteForm.dataset.sourceUrl;
    } catch (error) {
      alert(error.message);
    }
  });
}
