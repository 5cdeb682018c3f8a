// Role assignments by scope and by principal: grant, revoke, built-in roles described.

import { arm, armList, V, seg } from "./api.js";
import { h, table, field, errorBox, status, confirmed, fill, id, copyable } from "./dom.js";

const lastSegment = (s) => String(s ?? "").split("/").pop().toLowerCase();

export async function roles({ who, params, rerender }) {
  const sub = `/subscriptions/${who.subscriptionId}`;
  const scope = params.get("scope") || sub;
  const principal = params.get("principal") || "";
  const filter = principal ? { $filter: `principalId eq '${principal}'` } : undefined;
  const [defs, assignments, identities] = await Promise.all([
    armList(`/subscriptions/${seg(who.subscriptionId)}/providers/Microsoft.Authorization/roleDefinitions`, V.authz),
    armList(`${scope}/providers/Microsoft.Authorization/roleAssignments`, V.authz, filter),
    armList(`/subscriptions/${seg(who.subscriptionId)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, V.mi),
  ]);
  const byId = new Map(defs.map((d) => [lastSegment(d.name ?? d.id), d]));
  const names = new Map(identities.map((i) => [i.properties?.principalId, i.name]));
  const roleOf = (a) => byId.get(lastSegment(a.properties?.roleDefinitionId));
  return h("section", {},
    h("h1", { text: "Role assignments" }),
    lookupForm(scope, principal),
    h("h2", { text: principal ? `Assignments of ${names.get(principal) ?? principal} visible at ${scope}` : `Assignments at and below ${scope}` }),
    table("Role assignments", [
      ["Principal", (a) => h("span", {}, names.get(a.properties?.principalId) ? h("strong", { text: names.get(a.properties.principalId) + " " }) : null,
        h("a.mono", { href: `#/roles?principal=${encodeURIComponent(a.properties?.principalId ?? "")}&scope=${encodeURIComponent(scope)}`, text: a.properties?.principalId ?? "" }))],
      ["Role", (a) => roleOf(a)?.properties?.roleName ?? a.properties?.roleDefinitionId],
      ["Scope", (a) => h("a.mono", { href: `#/roles?scope=${encodeURIComponent(a.properties?.scope ?? "")}`, text: a.properties?.scope ?? "" })],
      ["", (a) => revokeButton(a, roleOf(a), rerender)],
    ], assignments, "No role assignments here."),
    grantForm(scope, principal, defs, identities, rerender),
    h("h2", { text: "Roles" }),
    table("Role definitions", [
      ["Role", (d) => h("strong", { text: d.properties?.roleName ?? d.name })],
      ["Type", (d) => d.properties?.type === "BuiltInRole" ? "built-in" : "custom"],
      ["What it allows", (d) => d.properties?.description ?? ""],
      ["Id", (d) => copyable(lastSegment(d.name ?? d.id), `id of ${d.properties?.roleName}`)],
    ], defs));
}

function lookupForm(scope, principal) {
  const scopeInput = h("input", { name: "scope", value: scope, autocomplete: "off" });
  const principalInput = h("input", { name: "principal", value: principal, autocomplete: "off", placeholder: "all principals" });
  return h("form.inline.panel", {
    "aria-label": "Choose scope and principal",
    onsubmit: (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      if (scopeInput.value.trim()) q.set("scope", scopeInput.value.trim());
      if (principalInput.value.trim()) q.set("principal", principalInput.value.trim());
      location.hash = `#/roles?${q}`;
    },
  }, field("Scope", scopeInput, "/subscriptions/…, a resource group, a vault or an identity"),
  field("Principal id", principalInput, "Only this principal's assignments"),
  h("div", {}, h("button", { type: "submit" }, "Show")));
}

function revokeButton(a, role, rerender) {
  return h("button.danger.small", {
    type: "button",
    "aria-label": `Revoke ${role?.properties?.roleName ?? "role"} from ${a.properties?.principalId}`,
    onclick: async (ev) => {
      if (!confirmed(`Revoke ${role?.properties?.roleName ?? "this role"} at ${a.properties?.scope}?`)) return;
      try {
        await arm("DELETE", a.id, V.authz);
        status("Role assignment revoked");
        await rerender();
      } catch (e) {
        ev.target.closest("td").append(errorBox(e));
      }
    },
  }, "Revoke");
}

function grantForm(scope, principal, defs, identities, rerender) {
  const listId = id("principals");
  const principalInput = h("input", { name: "grant-principal", list: listId, value: principal, autocomplete: "off", required: true });
  const role = h("select", { name: "role", required: true },
    defs.map((d) => h("option", { value: d.id, text: d.properties?.roleName ?? d.name })));
  const description = h("p.hint", { "aria-live": "polite" });
  const describe = () => {
    const d = defs.find((x) => x.id === role.value);
    fill(description, d ? `${d.properties?.roleName}: ${d.properties?.description ?? ""}` : "");
  };
  role.addEventListener("change", describe);
  describe();
  const scopeInput = h("input", { name: "grant-scope", value: scope, autocomplete: "off", required: true });
  const result = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Grant");
  const form = h("form", {
    "aria-label": "Grant a role",
    onsubmit: async (ev) => {
      ev.preventDefault();
      fill(result);
      submit.disabled = true;
      try {
        const at = scopeInput.value.trim().replace(/\/+$/, "");
        await arm("PUT", `${at}/providers/Microsoft.Authorization/roleAssignments/${crypto.randomUUID()}`, V.authz, {
          properties: { roleDefinitionId: role.value, principalId: principalInput.value.trim(), principalType: "ServicePrincipal" },
        });
        status("Role granted");
        await rerender();
      } catch (e) {
        fill(result, errorBox(e));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("datalist", { id: listId }, identities.map((i) => h("option", { value: i.properties?.principalId ?? "", label: i.name }))),
  h("div.inline-fields", {},
    field("Principal id", principalInput, "An identity's principal id (pick from the list)"),
    field("Role", role),
    field("Scope", scopeInput, "Where the role applies: a subscription, resource group or resource id")),
  description,
  h("div", {}, submit));
  return h("div.panel", {}, h("h2", { text: "Grant a role" }), form, result);
}
