// Calling Datasette's JSON endpoints: a failure carries the server's own words.

export class ApiError extends Error {
  // status: the HTTP status, or null when the server could not be reached.
  constructor(message, status = null) {
    super(message);
    this.status = status;
  }
}

export async function postJSON(url, body, { signal, keepalive = false } = {}) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal,
      keepalive,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError("Could not reach the server");
  }
  const data = await response.json().catch(() => null);
  if (!data || !data.ok) {
    const message = data && data.errors ? data.errors.join("; ") : `HTTP ${response.status}`;
    throw new ApiError(message, response.status);
  }
  return data;
}
