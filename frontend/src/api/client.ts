/**
 * Fetch wrapper for the Tessera JSON API: session cookies, Django CSRF header on unsafe methods,
 * and errors turned into `ApiError` from the `{"error": {code, message, details}}` body.
 */

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** True for failures worth retrying (network down, gateway/server hiccups, throttling). */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

function readCookie(name: string): string | null {
  const m = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return m ? decodeURIComponent(m[1]) : null;
}

let csrfFromBody: string | null = null;

/** Make sure a CSRF token is available (the cookie, or the body of /auth/csrf/). */
export async function ensureCsrf(force = false): Promise<string> {
  const fromCookie = readCookie("csrftoken");
  if (fromCookie && !force) return fromCookie;
  const res = await fetch(`${API}/auth/csrf/`, { credentials: "same-origin" });
  const body = (await res.json().catch(() => ({}))) as { csrfToken?: string };
  csrfFromBody = body.csrfToken ?? null;
  return readCookie("csrftoken") ?? csrfFromBody ?? "";
}

export function csrfToken(): string {
  return readCookie("csrftoken") ?? csrfFromBody ?? "";
}

/** Turn an error response body into an ApiError. */
export function errorFrom(status: number, body: unknown, fallback: string): ApiError {
  const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
  if (e) return new ApiError(status, e.code ?? "error", e.message ?? fallback, e.details);
  return new ApiError(status, status === 0 ? "network" : "http_error", fallback);
}

export interface RequestOptions {
  method?: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  signal?: AbortSignal;
}

/** Call the API at `path` (relative to /api/v1, e.g. "/projects/"); resolves with parsed JSON. */
export async function api<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const method = opts.method ?? "GET";
  let url = path.startsWith("/api/") ? path : `${API}${path}`;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (opts.body instanceof FormData) body = opts.body;
  else if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken() || (await ensureCsrf());
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, credentials: "same-origin", signal: opts.signal });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "network", "Network error: the server could not be reached.");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw errorFrom(res.status, data, `${res.status} ${res.statusText || "error"}`);
  return data as T;
}

export interface UploadResponse<T> {
  status: number;
  body: T | null;
}

/**
 * Upload one multipart form with XMLHttpRequest so progress can be shown.
 * `onProgress` gets the fraction (0..1) of the request body sent. Resolves for every HTTP
 * status (the caller reads per-file errors from the body); rejects with ApiError(0) on a
 * network failure and with an AbortError DOMException when aborted.
 */
export function uploadForm<T>(
  url: string,
  form: FormData,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<UploadResponse<T>> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url.startsWith("/api/") ? url : `${API}${url}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onProgress(ev.loaded / ev.total);
    };
    xhr.onload = () => {
      let body: T | null = null;
      try {
        body = xhr.responseText ? (JSON.parse(xhr.responseText) as T) : null;
      } catch {
        body = null;
      }
      onProgress(1);
      resolve({ status: xhr.status, body });
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "Network error during upload."));
    xhr.onabort = () => reject(new DOMException("Upload aborted", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort());
    xhr.send(form);
  });
}
