// Identities: list with client and principal ids, create, delete.

import { arm, armList, V, seg } from "./api.js";
import { h, table, copyable, field, setProblem, errorBox, status, confirmed, fill, id } from "./dom.js";
import { identityName, groupName } from "./validate.js";

export async function identities({ who, rerender }) {
  const sub = `/subscriptions/${seg(who.subscriptionId)}`;
  const [list, groups] = await Promise.all([
    armList(`${sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities`, V.mi),
    armList(`${sub}/resourcegroups`, V.rg),
  ]);
  list.sort((a, b) => a.name.localeCompare(b.name));
  return h("section", {},
    h("h1", { text: "Identities" }),
    createForm(sub, groups, rerender),
    h("h2", { text: `${list.length} ${list.length === 1 ? "identity" : "identities"} in subscription ${who.subscriptionId}` }),
    table("User-assigned managed identities", [
      ["Name", (i) => h("a", { href: `#/credentials?id=${encodeURIComponent(i.id)}` }, i.name)],
      ["Resource group", (i) => groupOf(i.id)],
      ["Client id", (i) => copyable(i.properties?.clientId ?? "", `client id of ${i.name}`)],
      ["Principal id", (i) => copyable(i.properties?.principalId ?? "", `principal id of ${i.name}`)],
      ["", (i) => h("div.actions", {},
        h("a.button", { href: `#/credentials?id=${encodeURIComponent(i.id)}`, class: "button secondary" }, "Credentials"),
        h("a.button", { href: `#/roles?principal=${encodeURIComponent(i.properties?.principalId ?? "")}`, class: "button secondary" }, "Roles"),
        deleteButton(i, rerender))],
    ], list, "No identities yet: create one above."));
}

/** The resource group segment of an ARM id. */
export function groupOf(armId) {
  const parts = armId.split("/");
  const i = parts.findIndex((p) => p.toLowerCase() === "resourcegroups");
  return i >= 0 ? parts[i + 1] : "";
}

function deleteButton(identity, rerender) {
  return h("button.danger.small", {
    type: "button",
    "aria-label": `Delete identity ${identity.name}`,
    onclick: async (ev) => {
      if (!confirmed(`Delete identity ${identity.name}? Workloads using it can no longer sign in.`)) return;
      ev.target.disabled = true;
      try {
        await arm("DELETE", identity.id, V.mi);
        status(`Deleted ${identity.name}`);
        await rerender();
      } catch (e) {
        ev.target.disabled = false;
        ev.target.closest("td").append(errorBox(e));
      }
    },
  }, "Delete");
}

function createForm(sub, groups, rerender) {
  const name = h("input", { name: "name", autocomplete: "off", required: true });
  const listId = id("groups");
  const group = h("input", { name: "group", list: listId, autocomplete: "off", required: true, value: groups[0]?.name ?? "" });
  const nameField = field("Name", name, "3-128 letters, digits, '-' or '_'");
  const groupField = field("Resource group", group, "An existing group, or a new one (created for you)");
  const result = h("div", { "aria-live": "polite" });
  const check = () => {
    setProblem(nameField, name, name.value ? identityName(name.value) : null);
    setProblem(groupField, group, group.value ? groupName(group.value) : null);
  };
  name.addEventListener("input", check);
  group.addEventListener("input", check);
  const submit = h("button", { type: "submit" }, "Create identity");
  const form = h("form.inline", {
    "aria-label": "Create an identity",
    onsubmit: async (ev) => {
      ev.preventDefault();
      fill(result);
      submit.disabled = true;
      try {
        const rg = group.value.trim();
        let location = groups.find((g) => g.name.toLowerCase() === rg.toLowerCase())?.location;
        if (!location) {
          location = "local";
          await arm("PUT", `${sub}/resourcegroups/${seg(rg)}`, V.rg, { location });
        }
        const created = await arm("PUT", `${sub}/resourceGroups/${seg(rg)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/${seg(name.value.trim())}`, V.mi, { location });
        status(`Created ${created.name}`);
        await rerender();
      } catch (e) {
        // The API's own message, whatever the inline checks thought.
        fill(result, errorBox(e));
      } finally {
        submit.disabled = false;
      }
    },
  }, nameField, groupField, h("div", {}, submit));
  return h("div.panel", {},
    h("h2", { text: "Create an identity" }),
    h("datalist", { id: listId }, groups.map((g) => h("option", { value: g.name }))),
    form, result);
}
