// Moving one file's bytes where prepare said to: back to Datasette as a raw
// body ("proxy"), to a presigned POST ("direct"), or to the storage in parts
// ("multipart"). Nothing here knows which storage is behind the URLs.

import { ApiError, postJSON as callJSON } from "./api.js";

const MAX_PARTS_IN_FLIGHT = 4;
const PART_ATTEMPTS = 4;
const ERROR_TEXT_LENGTH = 200;

export class UploadFailure extends Error {
  // status: the HTTP status, if there was one; permanent: retrying cannot help.
  constructor(message, { status = null, permanent = false } = {}) {
    super(message);
    this.status = status;
    this.permanent = permanent;
  }
}

export function abortError() {
  return new DOMException("Cancelled", "AbortError");
}

// What a person should read for a failed request: the server's own words,
// with what the status means in front of them.
function describeFailure(status, message) {
  if (status === 413) return new UploadFailure(`Too large: ${message}`, { status, permanent: true });
  if (status === 403) return new UploadFailure(`Not allowed: ${message}`, { status });
  if (status === 503) {
    return new UploadFailure(`Storage is unavailable right now, try again later: ${message}`, { status });
  }
  return new UploadFailure(message, { status });
}

// A call to one of Datasette's JSON endpoints, its failures as UploadFailures.
export async function postJSON(url, body, options) {
  try {
    return await callJSON(url, body, options);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === null) throw new UploadFailure(error.message);
    throw describeFailure(error.status, error.message);
  }
}

// What a failed request to the storage said: the JSON "errors" of a server
// like Datasette, else the start of whatever text it sent, markup removed.
function failureText(status, text) {
  try {
    const data = JSON.parse(text);
    if (Array.isArray(data?.errors)) return data.errors.join("; ");
  } catch (_error) {
    // Not JSON: fall through to the text itself.
  }
  const plain = (text || "")
    .replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, ERROR_TEXT_LENGTH);
  return plain ? `the storage answered HTTP ${status}: ${plain}` : `the storage answered HTTP ${status}`;
}

// XMLHttpRequest, because fetch() cannot report upload progress.
function send(method, url, body, headers, onProgress, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abortError());
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) {
      xhr.setRequestHeader(name, value);
    }
    xhr.upload.onprogress = (event) => onProgress(event.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
      reject(describeFailure(xhr.status, failureText(xhr.status, xhr.responseText)));
    };
    xhr.onerror = () => reject(new UploadFailure("The connection failed during the upload"));
    xhr.onabort = () => reject(abortError());
    signal.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(body);
  });
}

// Send ``file`` as ``upload`` (prepare's instructions) says. onProgress gets
// the bytes sent so far. Resolves to the part list complete needs, or null.
export async function sendFile(file, upload, token, onProgress, signal) {
  if (upload.mode === "multipart") return sendParts(file, upload, token, onProgress, signal);
  let body = file;
  let headers = upload.headers;
  if (upload.mode === "direct" && upload.method === "POST") {
    // A presigned POST: the policy fields, then the file, last.
    body = new FormData();
    for (const [name, value] of Object.entries(upload.fields || {})) body.append(name, value);
    body.append("file", file);
  } else if (upload.mode === "proxy") {
    // The raw body (the token travels in upload.headers); upload.fields are
    // for clients that send a form instead.
    headers = { "Content-Type": "application/octet-stream", ...upload.headers };
  }
  await send(upload.method, upload.url, body, headers, onProgress, signal);
  return null;
}

// Multipart: up to MAX_PARTS_IN_FLIGHT parts at once, each part retried on
// its own (with a fresh presigned URL) before the whole upload gives up.
// Each part's tag comes from the response header upload.part_tag_header
// names; complete gets them as [{PartNumber, ETag}].
async function sendParts(file, upload, token, onProgress, signal) {
  const tagHeader = upload.part_tag_header || "ETag";
  // One part failing for good stops the others too.
  const stop = new AbortController();
  const stopAll = () => stop.abort();
  signal.addEventListener("abort", stopAll, { once: true });
  const partLoaded = new Map();
  const reportParts = () => {
    let total = 0;
    for (const value of partLoaded.values()) total += value;
    onProgress(total);
  };
  const tags = [];
  const sendPart = async (number) => {
    const start = (number - 1) * upload.part_size;
    const blob = file.slice(start, Math.min(start + upload.part_size, file.size));
    for (let attempt = 1; ; attempt++) {
      try {
        const signed = await postJSON(
          upload.parts_url,
          { upload_token: token, part_numbers: [number] },
          { signal: stop.signal }
        );
        const xhr = await send("PUT", signed.urls[String(number)], blob, {}, (n) => {
          partLoaded.set(number, n);
          reportParts();
        }, stop.signal);
        const tag = xhr.getResponseHeader(tagHeader);
        if (!tag) {
          throw new UploadFailure(
            `The storage did not expose the ${tagHeader} header: check its CORS rules (expose ${tagHeader})`,
            { permanent: true }
          );
        }
        partLoaded.set(number, blob.size);
        reportParts();
        tags.push({ PartNumber: number, ETag: tag });
        return;
      } catch (error) {
        const hopeless = error.permanent || error.status === 403 || attempt >= PART_ATTEMPTS;
        if (error.name === "AbortError" || hopeless) throw error;
        partLoaded.set(number, 0);
        reportParts();
        await new Promise((resolve) => setTimeout(resolve, 400 * attempt));
        if (stop.signal.aborted) throw abortError();
      }
    }
  };
  let next = 1;
  const worker = async () => {
    while (next <= upload.part_count) await sendPart(next++);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(MAX_PARTS_IN_FLIGHT, upload.part_count) }, worker));
  } catch (error) {
    stopAll();
    throw error;
  } finally {
    signal.removeEventListener("abort", stopAll);
  }
  tags.sort((a, b) => a.PartNumber - b.PartNumber);
  return tags;
}
