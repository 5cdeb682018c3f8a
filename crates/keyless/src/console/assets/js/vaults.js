// Vaults and their secrets: names, versions, attributes, soft-deleted secrets with
// recover and purge. A value is fetched only when the operator clicks "Reveal", with the
// operator's own vault token, so RBAC decides (a 403 shows the vault's message).

import { armList, vault, V, seg } from "./api.js";
import { h, table, errorBox, status, confirmed, fill, when, field } from "./dom.js";
import { groupOf } from "./identities.js";

const nameOf = (secretId) => {
  const parts = String(secretId ?? "").split("/");
  const i = parts.indexOf("secrets") >= 0 ? parts.indexOf("secrets") : parts.indexOf("deletedsecrets");
  return i >= 0 ? decodeURIComponent(parts[i + 1] ?? "") : "";
};
const versionOf = (secretId) => {
  const parts = String(secretId ?? "").split("/");
  const i = parts.indexOf("secrets");
  return i >= 0 ? parts[i + 2] ?? "" : "";
};
const unix = (t) => (typeof t === "number" ? when(t) : "");

export async function vaults({ who }) {
  const list = await armList(`/subscriptions/${seg(who.subscriptionId)}/providers/Microsoft.KeyVault/vaults`, V.kv);
  return h("section", {},
    h("h1", { text: "Vaults" }),
    table("Key vaults in the subscription", [
      ["Name", (v) => h("a", { href: `#/secrets?vault=${encodeURIComponent(v.name)}&id=${encodeURIComponent(v.id)}` }, v.name)],
      ["Resource group", (v) => groupOf(v.id)],
      ["URI", (v) => h("span.mono", { text: v.properties?.vaultUri ?? "" })],
      ["Soft-delete retention", (v) => `${v.properties?.softDeleteRetentionInDays ?? ""} days`],
      ["", (v) => h("a", { href: `#/roles?scope=${encodeURIComponent(v.id)}` }, "Access (roles)")],
    ], list, "No vaults in this subscription (create one with keyless keyvault create)."));
}

export async function secrets({ params, rerender }) {
  const name = params.get("vault") ?? "";
  const armId = params.get("id") ?? "";
  const out = h("section", {},
    h("p", {}, h("a", { href: "#/vaults" }, "← Vaults")),
    h("h1", { text: `Vault ${name}` }),
    armId ? h("p", {}, h("a", { href: `#/roles?scope=${encodeURIComponent(armId)}` }, "Who has access to this vault")) : null);
  // Listing needs data-plane rights of its own: show the vault's refusal, not a blank page.
  let live = [];
  try {
    live = ((await vault("GET", name, "/secrets")) ?? {}).value ?? [];
  } catch (e) {
    out.append(h("h2", { text: "Secrets" }), errorBox(e));
    return out;
  }
  out.append(h("h2", { text: "Secrets" }),
    table("Secrets (values are never listed)", [
      ["Name", (s) => h("strong", { text: nameOf(s.id) })],
      ["Enabled", (s) => s.attributes?.enabled === false ? h("span.badge.warn", { text: "disabled" }) : h("span.badge.ok", { text: "enabled" })],
      ["Content type", (s) => s.contentType ?? ""],
      ["Created", (s) => unix(s.attributes?.created)],
      ["Updated", (s) => unix(s.attributes?.updated)],
      ["Value", (s) => revealCell(name, nameOf(s.id))],
      ["", (s) => h("div.actions", {}, versionsButton(name, nameOf(s.id)), deleteButton(name, nameOf(s.id), rerender))],
    ], live, "No secrets in this vault."));
  out.append(setForm(name, rerender));
  let deleted = [];
  let deletedError = null;
  try {
    deleted = ((await vault("GET", name, "/deletedsecrets")) ?? {}).value ?? [];
  } catch (e) {
    deletedError = e;
  }
  out.append(h("h2", { text: "Deleted secrets" }),
    deletedError ? errorBox(deletedError) : table("Soft-deleted secrets, recoverable until purged", [
      ["Name", (s) => nameOf(s.recoveryId ?? s.id)],
      ["Deleted", (s) => unix(s.deletedDate)],
      ["Purged automatically", (s) => unix(s.scheduledPurgeDate)],
      ["", (s) => h("div.actions", {}, recoverButton(name, nameOf(s.recoveryId ?? s.id), rerender), purgeButton(name, nameOf(s.recoveryId ?? s.id), rerender))],
    ], deleted, "No deleted secrets."));
  return out;
}

function revealCell(vaultName, secret) {
  const cell = h("div");
  const button = h("button.secondary.small", {
    type: "button",
    "aria-label": `Reveal the value of ${secret}`,
    onclick: async () => {
      button.disabled = true;
      try {
        const s = await vault("GET", vaultName, `/secrets/${seg(secret)}`);
        const value = h("code.secret-value", { text: s.value ?? "" });
        const hide = h("button.secondary.small", { type: "button", onclick: () => fill(cell, button) }, "Hide");
        fill(cell, value, " ", hide);
        button.disabled = false;
        hide.focus();
      } catch (e) {
        button.disabled = false;
        fill(cell, button, errorBox(e));
      }
    },
  }, "Reveal");
  return fill(cell, button);
}

function versionsButton(vaultName, secret) {
  return h("button.secondary.small", {
    type: "button",
    "aria-label": `Versions of ${secret}`,
    onclick: async (ev) => {
      const row = ev.target.closest("tr");
      const next = row.nextElementSibling;
      if (next && next.classList.contains("versions")) { next.remove(); return; }
      const cell = h("td", { colspan: 7 });
      row.after(h("tr.versions", {}, cell));
      try {
        const list = ((await vault("GET", vaultName, `/secrets/${seg(secret)}/versions`)) ?? {}).value ?? [];
        fill(cell, table(`Versions of ${secret}`, [
          ["Version", (v) => h("span.mono", { text: versionOf(v.id) })],
          ["Enabled", (v) => (v.attributes?.enabled === false ? "no" : "yes")],
          ["Created", (v) => unix(v.attributes?.created)],
          ["Updated", (v) => unix(v.attributes?.updated)],
        ], list));
      } catch (e) {
        fill(cell, errorBox(e));
      }
    },
  }, "Versions");
}

function action(label, aria, question, call, done, rerender, danger) {
  return h(danger ? "button.danger.small" : "button.secondary.small", {
    type: "button",
    "aria-label": aria,
    onclick: async (ev) => {
      if (question && !confirmed(question)) return;
      try {
        await call();
        status(done);
        await rerender();
      } catch (e) {
        ev.target.closest("td").append(errorBox(e));
      }
    },
  }, label);
}

function deleteButton(v, s, rerender) {
  return action("Delete", `Delete secret ${s}`, `Delete secret ${s}? It stays recoverable until purged.`,
    () => vault("DELETE", v, `/secrets/${seg(s)}`), `Deleted ${s}`, rerender, true);
}

function recoverButton(v, s, rerender) {
  return action("Recover", `Recover secret ${s}`, null,
    () => vault("POST", v, `/deletedsecrets/${seg(s)}/recover`), `Recovered ${s}`, rerender, false);
}

function purgeButton(v, s, rerender) {
  return action("Purge", `Purge secret ${s}`, `Purge ${s} for good? This cannot be undone.`,
    () => vault("DELETE", v, `/deletedsecrets/${seg(s)}`), `Purged ${s}`, rerender, true);
}

/** Sets a secret (a new version when it exists). The value is sent once and not kept. */
function setForm(vaultName, rerender) {
  const name = h("input", { name: "secret-name", autocomplete: "off", required: true, pattern: "[0-9A-Za-z\\-]{1,127}" });
  const value = h("input", { name: "secret-value", type: "password", autocomplete: "off", required: true });
  const result = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Set secret");
  const form = h("form.inline", {
    "aria-label": "Set a secret",
    onsubmit: async (ev) => {
      ev.preventDefault();
      fill(result);
      submit.disabled = true;
      try {
        await vault("PUT", vaultName, `/secrets/${seg(name.value.trim())}`, { value: value.value });
        value.value = "";
        status(`Set ${name.value.trim()}`);
        await rerender();
      } catch (e) {
        fill(result, errorBox(e));
      } finally {
        submit.disabled = false;
      }
    },
  }, field("Name", name, "1-127 letters, digits and dashes"), field("Value", value, "Stored as a new version; never shown unless revealed"), h("div", {}, submit));
  return h("div.panel", {}, h("h2", { text: "Set a secret" }), form, result);
}
