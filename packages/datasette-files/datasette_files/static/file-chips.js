// The chosen files of a `multiple` file column, for <datasette-file-picker>:
// one chip per file, in order, each with buttons to move it earlier or later
// and to remove it. They are ordinary buttons, so Tab, Enter and Space work.
// At the ends of the list they are aria-disabled rather than disabled, so a
// button keeps its focus when its file moves there.

const ACTIONS = [
  ["earlier", "↑", (name) => `Move ${name} earlier`],
  ["later", "↓", (name) => `Move ${name} later`],
  ["remove", "×", (name) => `Remove ${name}`],
];

// The nodes to show for `ids`: the list (or "No files chosen") and a count.
// fileElement(id, onName) makes the <datasette-file>, calling onName with the
// filename once it is known; nameOf(id) is the name known so far.
export function chips(ids, { limit, nameOf, fileElement }) {
  const count = document.createElement("span");
  count.className = "dfp-count";
  count.textContent = `${ids.length} of ${limit} files`;
  if (!ids.length) {
    const none = document.createElement("span");
    none.className = "dfp-none";
    none.textContent = "No files chosen";
    return [none, count];
  }
  const list = document.createElement("ul");
  list.className = "dfp-chips";
  list.setAttribute("aria-label", "Chosen files");
  ids.forEach((id, index) => {
    const chip = document.createElement("li");
    chip.className = "dfp-chip";
    chip.dataset.index = index;
    const inactive = { earlier: index === 0, later: index === ids.length - 1, remove: false };
    const buttons = ACTIONS.map(([action, text]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = `dfp-chip-${action}`;
      button.dataset.action = action;
      button.textContent = text;
      button.setAttribute("aria-disabled", String(inactive[action]));
      return button;
    });
    const label = (name) => {
      buttons.forEach((button, i) => {
        button.setAttribute("aria-label", ACTIONS[i][2](name));
      });
    };
    label(nameOf(id));
    chip.append(fileElement(id, label), ...buttons);
    list.append(chip);
  });
  return [list, count];
}

// The chip button an event came from: {index, action}, or null.
export function chipAction(event) {
  const button = event.target.closest(".dfp-chip button[data-action]");
  if (!button || button.getAttribute("aria-disabled") === "true") return null;
  return { index: Number(button.closest(".dfp-chip").dataset.index), action: button.dataset.action };
}

// Apply `action` to the chip at `index` of `ids` (in place): where it went.
export function applyChipAction(ids, index, action) {
  if (action === "remove") {
    ids.splice(index, 1);
    return Math.min(index, ids.length - 1);
  }
  const to = index + (action === "earlier" ? -1 : 1);
  [ids[index], ids[to]] = [ids[to], ids[index]];
  return to;
}

// After an action, focus what the person expects: the same button on the file
// that moved (or its other move button, at an end), or the next remove button.
export function focusAfter(container, action, index) {
  const chip = container.querySelectorAll(".dfp-chip")[index];
  if (!chip) return false;
  const same = chip.querySelector(`[data-action=${action}]`);
  const other = chip.querySelector(`[data-action=${action === "earlier" ? "later" : "earlier"}]`);
  (same.getAttribute("aria-disabled") === "true" ? other : same).focus();
  return true;
}
