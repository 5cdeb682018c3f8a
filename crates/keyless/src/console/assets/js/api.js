// Calls to the console's own JSON API. The launch secret arrives in the URL's fragment
// (which browsers never send to servers): it is moved to sessionStorage and removed from
// the address bar, then sent in X-Keyless-Console on every call. No bearer token ever
// reaches the page: the console server holds it.

const KEY = "keyless-console-secret";

/** API versions of the management API's resource families. */
export const V = {
  mi: "2023-01-31",
  authz: "2022-04-01",
  rg: "2021-04-01",
  kv: "2023-07-01",
  keyless: "2024-01-01",
};

/** Reads the secret from location.hash once and hides it. */
export function takeSecret() {
  const hash = location.hash.slice(1);
  if (hash && !hash.startsWith("/")) {
    sessionStorage.setItem(KEY, hash);
    history.replaceState(null, "", location.pathname + location.search + "#/overview");
  }
}

/** An error the API answered with: its code and message, as the API wrote them. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, url, body) {
  const headers = { "X-Keyless-Console": sessionStorage.getItem(KEY) ?? "" };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (body !== undefined) init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, "ConsoleUnreachable", `The console server did not answer (${e.message}). Is \`keyless console\` still running?`);
  }
  const text = await response.text();
  let data = null;
  if (text.trim()) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, "NotJson", `HTTP ${response.status}: ${text.slice(0, 300)}`);
    }
  }
  if (!response.ok) {
    const err = data && data.error;
    if (err && typeof err === "object") {
      throw new ApiError(response.status, String(err.code ?? "Error"), String(err.message ?? ""));
    }
    throw new ApiError(response.status, "Error", `HTTP ${response.status}`);
  }
  return data;
}

function withVersion(path, version, params) {
  const q = new URLSearchParams({ "api-version": version, ...(params ?? {}) });
  return `${path}?${q}`;
}

/** A management API call: `path` is an ARM path such as /subscriptions/… */
export function arm(method, path, version, body, params) {
  return call(method, "/api/arm" + withVersion(path, version, params), body);
}

/** A whole list (the console server follows nextLink). */
export async function armList(path, version, params) {
  const data = await arm("GET", path, version, undefined, params);
  return (data && Array.isArray(data.value)) ? data.value : [];
}

/** A vault data-plane call: `path` under the vault, e.g. /secrets. */
export function vault(method, name, path, body) {
  return call(method, `/api/vault/${encodeURIComponent(name)}${path}`, body);
}

/** Who the console acts as. */
export function session() {
  return call("GET", "/api/session");
}

/** Percent-encodes one path segment. */
export const seg = encodeURIComponent;
