// What every page script shares: calling Datasette's JSON endpoints (a
// failure carries the server's own words) and building DOM elements.

export class ApiError extends Error {
  // status: the HTTP status, or null when the server could not be reached.
  constructor(message, status = null) {
    super(message);
    this.status = status;
  }
}

async function requestJSON(url, init) {
  let response;
  try {
    response = await fetch(url, { credentials: "same-origin", ...init });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("Could not reach the server");
  }
  const data = await response.json().catch(() => null);
  if (!data?.ok) {
    const message = data?.errors ? data.errors.join("; ") : `HTTP ${response.status}`;
    throw new ApiError(message, response.status);
  }
  return data;
}

// GET a JSON endpoint; resolves to its body, which has "ok": true.
export function getJSON(url, { signal } = {}) {
  return requestJSON(url, { signal });
}

// POST ``body`` as JSON; resolves to the reply, which has "ok": true.
export function postJSON(url, body, { signal, keepalive = false } = {}) {
  return requestJSON(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
    keepalive,
  });
}

// element("a", { class: "x", href }, "text", child, ...): attributes are set
// as written (true means present, false/null/undefined absent); children
// are nodes or strings.
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) node.setAttribute(name, "");
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}
