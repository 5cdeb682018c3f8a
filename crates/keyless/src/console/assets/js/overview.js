// Overview: counts, exchanges and failures over the last 24 hours, top failure reasons.

import { arm, armList, V, seg } from "./api.js";
import { h, table } from "./dom.js";
import { aadsts } from "./signins.js";

const HOURS = 24;

export async function overview({ who }) {
  const sub = `/subscriptions/${seg(who.subscriptionId)}`;
  const since = Math.floor(Date.now() / 1000) - HOURS * 3600;
  const [ids, assignments, vaultList, log] = await Promise.all([
    armList(`${sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, V.mi),
    armList(`${sub}/providers/Microsoft.Authorization/roleAssignments`, V.authz),
    armList(`${sub}/providers/Microsoft.KeyVault/vaults`, V.kv),
    arm("GET", "/providers/Keyless/signInLogs", V.keyless, undefined, { $top: "1000", since: String(since) }),
  ]);
  const rows = (log && log.value) || [];
  const count = (r) => Number(r.count ?? 1);
  const ok = rows.filter((r) => r.status === "success").reduce((n, r) => n + count(r), 0);
  const failed = rows.filter((r) => r.status !== "success").reduce((n, r) => n + count(r), 0);
  const reasons = new Map();
  for (const r of rows.filter((r) => r.status !== "success")) {
    const key = `${r.errorCode ?? ""}\u0000${r.failureReason ?? ""}`;
    reasons.set(key, (reasons.get(key) ?? 0) + count(r));
  }
  const top = [...reasons.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8)
    .map(([k, n]) => { const [code, reason] = k.split("\u0000"); return { code, reason, n }; });
  return h("section", {},
    h("h1", { text: "Overview" }),
    h("div.cards", {},
      card(ids.length, "identities", "#/identities"),
      card(assignments.length, "role assignments", "#/roles"),
      card(vaultList.length, "vaults", "#/vaults"),
      card(ok + failed, `sign-ins, last ${HOURS} h`, "#/signins?since=24h"),
      card(failed, `of them failed`, "#/signins?result=failure&since=24h")),
    h("div.panel.chart", {},
      h("h2", { text: `Token exchanges per hour, last ${HOURS} hours` }),
      chart(rows, since),
      h("div.legend", {},
        h("span", {}, h("span.swatch", { class: "swatch sw-ok" }), "succeeded"),
        h("span", {}, h("span.swatch", { class: "swatch sw-bad" }), "failed"))),
    h("h2", { text: "Top failure reasons" }),
    table("Failures in the last 24 hours, by error", [
      ["Error code", (r) => h("span.mono.nowrap", { text: aadsts(r.code) || "—" })],
      ["Reason", (r) => r.reason],
      ["Requests", (r) => String(r.n)],
      ["", (r) => h("a", { href: `#/signins?result=failure&code=${encodeURIComponent(r.code)}` }, "See sign-ins")],
    ], top, "No failed sign-ins in the last 24 hours."));
}

function card(n, label, href) {
  return h("a.card", { href, class: "card" }, h("div.n", { text: String(n) }), h("div.l", { text: label }));
}

/** Stacked bars per hour as inline SVG (built with createElementNS: no markup strings). */
function chart(rows, since) {
  const NS = "http://www.w3.org/2000/svg";
  const ok = new Array(HOURS).fill(0);
  const bad = new Array(HOURS).fill(0);
  for (const r of rows) {
    const t = Date.parse(r.createdDateTime) / 1000;
    const i = Math.floor((t - since) / 3600);
    if (i < 0 || i >= HOURS) continue;
    (r.status === "success" ? ok : bad)[i] += Number(r.count ?? 1);
  }
  const max = Math.max(1, ...ok.map((v, i) => v + bad[i]));
  const W = 1160, H = 200, pad = 30, bw = (W - pad - 10) / HOURS;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H + 20}`);
  svg.setAttribute("role", "img");
  const total = ok.reduce((a, b) => a + b, 0), totalBad = bad.reduce((a, b) => a + b, 0);
  svg.setAttribute("aria-label", `Bar chart: ${total} successful and ${totalBad} failed token exchanges in the last ${HOURS} hours, busiest hour ${max} requests.`);
  const el = (name, attrs) => {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    svg.append(e);
    return e;
  };
  el("line", { x1: pad, y1: H, x2: W, y2: H, stroke: "#4d5661" });
  el("text", { x: 0, y: 12, "font-size": 11, fill: "#4d5661" }).textContent = String(max);
  el("text", { x: 0, y: H, "font-size": 11, fill: "#4d5661" }).textContent = "0";
  for (let i = 0; i < HOURS; i++) {
    const x = pad + i * bw + 2;
    const hOk = (ok[i] / max) * (H - 10);
    const hBad = (bad[i] / max) * (H - 10);
    const hour = new Date((since + i * 3600) * 1000);
    const label = `${hour.getHours()}:00 — ${ok[i]} succeeded, ${bad[i]} failed`;
    const a = el("rect", { x, y: H - hOk, width: bw - 4, height: hOk, fill: "#1a7f37" });
    a.append(Object.assign(document.createElementNS(NS, "title"), { textContent: label }));
    const b = el("rect", { x, y: H - hOk - hBad, width: bw - 4, height: hBad, fill: "#cf222e" });
    b.append(Object.assign(document.createElementNS(NS, "title"), { textContent: label }));
    if (i % 4 === 0) el("text", { x, y: H + 14, "font-size": 11, fill: "#4d5661" }).textContent = `${hour.getHours()}:00`;
  }
  return svg;
}
