// Every request the studio makes goes through here: it carries the key (if any), turns error answers
// into ApiError with the API's own `detail`, and follows 202 answers to their result.

const KEY = "ganforge-key";
let askForKey = null; // set by main.js: resolves once the person has typed a key

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail));
    this.status = status;
    this.detail = detail;
  }
  // [[field, message]] for 422 lists; [[null, text]] otherwise
  get fields() {
    if (Array.isArray(this.detail)) {
      return this.detail.map((item) => [fieldOf(item), item.msg ?? JSON.stringify(item)]);
    }
    return [[null, describe(this.detail)]];
  }
}

function fieldOf(item) {
  const loc = (item.loc || []).filter((part) => part !== "body" && part !== "query" && part !== "path");
  return loc.length ? loc.join(".") : null;
}

function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((item) => (fieldOf(item) ? `${fieldOf(item)}: ` : "") + (item.msg ?? "")).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function setKeyPrompt(prompt) { askForKey = prompt; }
export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

function headersWith(extra = {}) {
  const headers = { ...extra };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

// fetch with the key; on 401 asks for a key once and retries
export async function raw(path, options = {}) {
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, { ...options, headers: headersWith(options.headers) });
    if (response.status === 401 && askForKey && attempt < 3) {
      const detail = await response.clone().json().then((b) => b.detail).catch(() => "");
      await askForKey(detail);
      continue;
    }
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`;
      try { detail = (await response.json()).detail ?? detail; } catch { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return response;
  }
}

export async function getJSON(path) { return (await raw(path)).json(); }

// POST JSON (or FormData); follows a 202 to the job's result
export async function post(path, body, { accept } = {}) {
  const form = body instanceof FormData;
  const response = await raw(path, {
    method: "POST",
    body: form ? body : JSON.stringify(body ?? {}),
    headers: form ? {} : { "Content-Type": "application/json" },
  });
  if (response.status === 202 && accept !== "accepted") {
    const location = response.headers.get("Location");
    if (location && location.startsWith("/v1/jobs/")) return waitForJob(location);
  }
  return response;
}

export async function postJSON(path, body) { return (await post(path, body)).json(); }

export async function del(path) { return raw(path, { method: "DELETE" }); }

async function waitForJob(location) {
  for (let delay = 250; ; delay = Math.min(delay * 1.5, 2000)) {
    const job = await getJSON(location);
    if (job.status === "finished") return raw(job.result_url);
    if (["failed", "canceled", "stopped"].includes(job.status)) {
      throw new ApiError(500, job.error || `the job ${job.status}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

// An object URL for a picture the API serves (img src cannot carry a key)
export async function blobURL(path) {
  const response = await raw(path);
  return URL.createObjectURL(await response.blob());
}

export async function download(path, filename) {
  const url = await blobURL(path);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Server-sent events over fetch (EventSource cannot send a key). Calls onEvent(name, data) per event;
// returns a function that stops reading.
export function events(path, onEvent, onEnd) {
  const controller = new AbortController();
  (async () => {
    try {
      const response = await raw(path, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (data.length) onEvent(name, JSON.parse(data.join("\n")));
        }
      }
      onEnd?.(null);
    } catch (error) {
      if (error.name !== "AbortError") onEnd?.(error);
    }
  })();
  return () => controller.abort();
}

// multipart upload with progress (XMLHttpRequest's upload events)
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", path);
    const key = getKey();
    if (key) request.setRequestHeader("Authorization", `Bearer ${key}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(new ApiError(request.status, body?.detail ?? `${request.status} ${request.statusText}`));
    });
    request.addEventListener("error", () => reject(new ApiError(0, "the upload failed (network error)")));
    request.send(form);
  });
}
