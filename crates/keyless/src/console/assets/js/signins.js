// The sign-in log, filtered by identity, result, error code and time; each failure links
// to its explanation.

import { arm, armList, V, seg } from "./api.js";
import { h, table, field, fill, when } from "./dom.js";

/** What each refusal means and what usually fixes it (AADSTS codes Keyless returns). */
const CODES = {
  "700211": ["The token's issuer is not trusted by any federated credential of this identity.", "Add a credential with exactly this issuer (scheme, host, path and trailing slash must match the token's iss)."],
  "700212": ["No federated credential's audience matches the token's aud.", "Request the token with the credential's audience (usually api://AzureADTokenExchange), or change the credential's audience."],
  "700213": ["No federated credential matches the token's subject (or claims expression).", "Add a credential for this subject, or check the namespace and service account (or repository and branch) the workload runs as."],
  "700024": ["The token is outside its validity period (expired or not yet valid).", "Use a fresh token; a projected token file is rotated by the kubelet, so read it again before each exchange."],
  "700016": ["No identity with this client id exists in the tenant.", "Check the client id the workload uses (AZURE_CLIENT_ID or the service account annotation)."],
  "50027": ["The token is malformed or its signature is invalid.", "Check the token is a JWT from the issuer, not truncated or altered."],
  "700027": ["The token's signature does not verify with the issuer's published keys.", "Check the issuer's JWKS is current (key rotation) and that the token comes from this issuer."],
  "50166": ["Keyless could not fetch the issuer's discovery document or keys.", "Check the issuer is reachable from the server (and allowed: private addresses need --allow-private-issuers), or register its JWKS with keyless issuer register."],
  "700222": ["The assertion was issued by Keyless itself.", "Present the workload's platform token (e.g. the projected service-account token), not a Keyless access token."],
  "70023": ["The token lives longer than Keyless accepts (25 h).", "Issue shorter-lived tokens."],
  "7000215": ["The client secret is wrong.", "Use the current secret for this application."],
  "7000222": ["The client secret has expired.", "Create a new secret."],
};

/** AADSTS700213 for 700213 (the log stores the number). */
export function aadsts(errorCode) {
  const n = codeNumber(errorCode);
  return n ? `AADSTS${n}` : String(errorCode ?? "");
}

export function codeNumber(errorCode) {
  const m = /(\d+)/.exec(String(errorCode ?? ""));
  return m ? m[1] : "";
}

function sinceParam(value) {
  const hours = { "1h": 1, "24h": 24, "7d": 168, "30d": 720 }[value];
  return hours ? String(Math.floor(Date.now() / 1000) - hours * 3600) : undefined;
}

export async function signins({ who, params }) {
  const identity = params.get("identity") ?? "";
  const result = params.get("result") ?? "";
  const code = params.get("code") ?? "";
  const since = params.get("since") ?? "24h";
  const query = { $top: "1000" };
  if (identity) query.clientId = identity;
  if (result === "failure") query.failed = "true";
  const s = sinceParam(since);
  if (s) query.since = s;
  const [log, identities] = await Promise.all([
    arm("GET", "/providers/Keyless/signInLogs", V.keyless, undefined, query),
    armList(`/subscriptions/${seg(who.subscriptionId)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, V.mi),
  ]);
  const names = new Map(identities.map((i) => [i.properties?.clientId, i.name]));
  let rows = (log && log.value) || [];
  if (result === "success") rows = rows.filter((r) => r.status === "success");
  if (code) rows = rows.filter((r) => String(r.errorCode ?? "").toLowerCase().includes(code.toLowerCase()) || codeNumber(r.errorCode) === codeNumber(code));
  return h("section", {},
    h("h1", { text: "Sign-in log" }),
    filters(identities, { identity, result, code, since }),
    h("p.muted", { text: `${rows.length} entries, newest first.` }),
    table("Token requests", [
      ["Time", (r) => when(r.createdDateTime)],
      ["Result", (r) => r.status === "success" ? h("span.badge.ok", { text: "success" }) : h("span.badge.bad", { text: "failure" })],
      ["Identity", (r) => names.get(r.clientId) ?? h("span.mono", { text: r.clientId ?? "" })],
      ["Subject", (r) => h("span.mono", { text: r.subject ?? "" })],
      ["Error", (r) => r.status === "success" ? "" : h("span", {}, h("span.mono", { text: `${aadsts(r.errorCode)} ` }), r.failureReason ?? "")],
      ["Count", (r) => String(r.count ?? 1)],
      ["", (r) => r.status === "success" ? "" : h("a", { href: `#/explanation?row=${encodeURIComponent(r.id)}&since=${encodeURIComponent(since)}` }, "Why?")],
    ], rows, "No sign-ins match these filters."));
}

function filters(identities, current) {
  const identity = h("select", { name: "identity" }, h("option", { value: "", text: "All identities" }),
    identities.map((i) => h("option", { value: i.properties?.clientId ?? "", text: i.name, selected: i.properties?.clientId === current.identity })));
  const result = h("select", { name: "result" },
    [["", "All results"], ["success", "Succeeded"], ["failure", "Failed"]].map(([v, t]) => h("option", { value: v, text: t, selected: v === current.result })));
  const code = h("input", { name: "code", value: current.code, autocomplete: "off", placeholder: "e.g. AADSTS700213" });
  const since = h("select", { name: "since" },
    [["1h", "Last hour"], ["24h", "Last 24 hours"], ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["all", "Everything kept"]].map(([v, t]) => h("option", { value: v, text: t, selected: v === current.since })));
  return h("form.filters", {
    "aria-label": "Filter the sign-in log",
    onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if (identity.value) q.set("identity", identity.value);
      if (result.value) q.set("result", result.value);
      if (code.value.trim()) q.set("code", code.value.trim());
      q.set("since", since.value);
      location.hash = `#/signins?${q}`;
    },
  }, field("Identity", identity), field("Result", result), field("Error code", code), field("Time", since),
  h("div", {}, h("button", { type: "submit" }, "Filter")));
}

/** One failed sign-in, explained. */
export async function explanation({ who, params }) {
  const row = params.get("row") ?? "";
  const query = { $top: "1000" , failed: "true" };
  const s = sinceParam(params.get("since") ?? "");
  if (s) query.since = s;
  const [log, identities] = await Promise.all([
    arm("GET", "/providers/Keyless/signInLogs", V.keyless, undefined, query),
    armList(`/subscriptions/${seg(who.subscriptionId)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, V.mi),
  ]);
  const r = ((log && log.value) || []).find((x) => String(x.id) === row);
  const back = h("p", {}, h("a", { href: "#/signins" }, "← Sign-in log"));
  if (!r) return h("section", {}, back, h("h1", { text: "Sign-in not found" }), h("p", { text: "This entry is no longer in the log (it may have been removed by retention)." }));
  const identity = identities.find((i) => i.properties?.clientId === r.clientId);
  const [meaning, fix] = CODES[codeNumber(r.errorCode)] ?? ["The token request was refused.", "The reason below is the server's own wording."];
  return h("section", {}, back,
    h("h1", { text: `Why did this sign-in fail?` }),
    h("div.error", {}, h("span.code", { text: `${aadsts(r.errorCode) || "Error"}: ` }), r.failureReason ?? ""),
    h("div.panel", {},
      h("h2", { text: "What it means" }), h("p", { text: meaning }),
      h("h2", { text: "What usually fixes it" }), h("p", { text: fix }),
      h("dl", {},
        h("dt", { text: "When" }), h("dd", { text: `${when(r.createdDateTime)} (${r.count ?? 1} request(s))` }),
        h("dt", { text: "Identity" }), h("dd", { text: identity ? `${identity.name} (${r.clientId})` : (r.clientId ?? "") }),
        h("dt", { text: "Issuer" }), h("dd.mono", { text: r.issuer ?? "" }),
        h("dt", { text: "Subject" }), h("dd.mono", { text: r.subject ?? "" }),
        h("dt", { text: "Correlation id" }), h("dd.mono", { text: r.correlationId ?? "" }),
        h("dt", { text: "Client address" }), h("dd.mono", { text: r.ipAddress ?? "" }))),
    identity ? h("p", {}, "Compare with the identity's credentials, and paste the workload's token into \"Test a token\" to see every check: ",
      h("a", { href: `#/credentials?id=${encodeURIComponent(identity.id)}` }, `${identity.name}: federated credentials`)) : null);
}
