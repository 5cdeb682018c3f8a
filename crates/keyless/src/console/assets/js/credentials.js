// One identity's federated credentials: list, create (inline validation, presets),
// delete, and "test a token" through the API's explain.

import { arm, armList, V } from "./api.js";
import { h, table, copyable, field, setProblem, errorBox, status, confirmed, fill } from "./dom.js";
import * as rules from "./validate.js";
import { groupOf } from "./identities.js";

const EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";

/** Presets: what each platform puts in its tokens. */
const PRESETS = [
  {
    label: "Kubernetes service account",
    name: "k8s-default-workload",
    issuer: "https://",
    subject: "system:serviceaccount:default:workload-identity-sa",
    hint: "Issuer: the cluster's service-account issuer (kubectl get --raw /.well-known/openid-configuration). Subject: system:serviceaccount:NAMESPACE:NAME.",
  },
  {
    label: "GitHub Actions",
    name: "github-main",
    issuer: "https://token.actions.githubusercontent.com",
    subject: "repo:OWNER/REPO:ref:refs/heads/main",
    hint: "Subject: repo:OWNER/REPO:ref:refs/heads/BRANCH, repo:OWNER/REPO:environment:NAME or repo:OWNER/REPO:pull_request.",
  },
  {
    label: "GitLab CI",
    name: "gitlab-main",
    issuer: "https://gitlab.com",
    subject: "project_path:GROUP/PROJECT:ref_type:branch:ref:main",
    hint: "Issuer: https://gitlab.com or your instance's URL. Subject: project_path:GROUP/PROJECT:ref_type:branch|tag:ref:NAME.",
  },
];

export async function credentials({ params, rerender }) {
  const identityId = params.get("id") ?? "";
  const identity = await arm("GET", identityId, V.mi);
  const list = await armList(`${identity.id}/federatedIdentityCredentials`, V.mi);
  const clientId = identity.properties?.clientId ?? "";
  return h("section", {},
    h("p", {}, h("a", { href: "#/identities" }, "← Identities")),
    h("h1", { text: `Identity ${identity.name}` }),
    h("div.panel", {},
      h("dl", {},
        h("dt", { text: "Resource group" }), h("dd", { text: groupOf(identity.id) }),
        h("dt", { text: "Client id" }), h("dd", {}, copyable(clientId, "client id")),
        h("dt", { text: "Principal id" }), h("dd", {}, copyable(identity.properties?.principalId ?? "", "principal id"))),
      h("a", { href: `#/roles?principal=${encodeURIComponent(identity.properties?.principalId ?? "")}` }, "Role assignments of this identity")),
    h("h2", { text: "Federated credentials" }),
    table("Who may act as this identity", [
      ["Name", (c) => c.name],
      ["Issuer", (c) => h("span.mono", { text: c.properties?.issuer ?? "" })],
      ["Subject or expression", (c) => h("span.mono", { text: c.properties?.subject ?? c.properties?.claimsMatchingExpression?.value ?? "" })],
      ["Audience", (c) => h("span.mono", { text: (c.properties?.audiences ?? []).join(", ") })],
      ["", (c) => deleteButton(c, rerender)],
    ], list, "No federated credentials: nothing can sign in as this identity yet."),
    createForm(identity, rerender),
    testToken(clientId, list));
}

function deleteButton(c, rerender) {
  return h("button.danger.small", {
    type: "button",
    "aria-label": `Delete credential ${c.name}`,
    onclick: async (ev) => {
      if (!confirmed(`Delete federated credential ${c.name}?`)) return;
      try {
        await arm("DELETE", c.id, V.mi);
        status(`Deleted ${c.name}`);
        await rerender();
      } catch (e) {
        ev.target.closest("td").append(errorBox(e));
      }
    },
  }, "Delete");
}

function createForm(identity, rerender) {
  const name = h("input", { name: "credential-name", autocomplete: "off" });
  const issuer = h("input", { name: "issuer", autocomplete: "off", inputmode: "url" });
  const subject = h("input", { name: "subject", autocomplete: "off" });
  const expression = h("textarea", { name: "expression", rows: 2 });
  const audience = h("input", { name: "audience", autocomplete: "off", value: EXCHANGE_AUDIENCE });
  const f = {
    name: field("Name", name, "3-120 letters, digits, '-' or '_'"),
    issuer: field("Issuer", issuer, "Exactly the tokens' iss: https, a host, an optional path"),
    subject: field("Subject", subject, "Exactly the tokens' sub"),
    expression: field("Or a claims-matching expression", expression, "e.g. claims['sub'] startsWith 'repo:org/'; leave empty when a subject is set"),
    audience: field("Audience", audience, "One audience; workloads ask for api://AzureADTokenExchange"),
  };
  const presetHint = h("p.hint");
  const touched = new Set();
  const check = () => {
    const show = (key, control, problem) => setProblem(f[key], control, touched.has(key) ? problem : null);
    show("name", name, rules.credentialName(name.value));
    show("issuer", issuer, rules.issuer(issuer.value));
    show("audience", audience, rules.audience(audience.value));
    const [s, e] = rules.subjectOrExpression(subject.value, expression.value);
    show("subject", subject, s);
    show("expression", expression, e);
  };
  for (const [key, control] of [["name", name], ["issuer", issuer], ["subject", subject], ["expression", expression], ["audience", audience]]) {
    control.addEventListener("input", () => { touched.add(key); check(); });
  }
  const presets = h("div.presets", { role: "group", "aria-label": "Presets" },
    PRESETS.map((p) => h("button.secondary", {
      type: "button",
      onclick: () => {
        name.value = p.name; issuer.value = p.issuer; subject.value = p.subject;
        expression.value = ""; audience.value = EXCHANGE_AUDIENCE;
        fill(presetHint, p.hint);
        ["name", "issuer", "subject", "expression", "audience"].forEach((k) => touched.add(k));
        check();
        issuer.focus();
      },
    }, p.label)));
  const result = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Add credential");
  const form = h("form", {
    "aria-label": "Add a federated credential",
    onsubmit: async (ev) => {
      ev.preventDefault();
      fill(result);
      submit.disabled = true;
      const body = rules.credentialBody({ issuer: issuer.value, subject: subject.value, expression: expression.value, audience: audience.value });
      try {
        await arm("PUT", `${identity.id}/federatedIdentityCredentials/${encodeURIComponent(name.value.trim())}`, V.mi, body);
        status(`Added credential ${name.value.trim()}`);
        await rerender();
      } catch (e) {
        // Whatever the inline checks said, the API has the last word: show its message.
        fill(result, errorBox(e));
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("div.inline-fields", {}, f.name, f.issuer),
  h("div.inline-fields", {}, f.subject, f.audience),
  f.expression,
  h("div", {}, submit));
  return h("div.panel", {}, h("h2", { text: "Add a federated credential" }), presets, presetHint, form, result);
}

/** The claims of a JWT, for showing only (the server verifies). */
function claimsOf(token) {
  try {
    const part = token.trim().split(".")[1];
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent([...atob(b64)].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join(""));
    return JSON.parse(json);
  } catch {
    return null;
  }
}

/** Text with the quoted values ('…') of a failure highlighted. */
function highlighted(detail, failed) {
  if (!failed) return [detail];
  return detail.split(/('[^']*')/).map((piece, i) => (i % 2 ? h("mark.diff", { text: piece }) : piece));
}

function testToken(clientId, creds) {
  const token = h("textarea", { name: "token", rows: 5, spellcheck: "false", autocomplete: "off" });
  const out = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Explain");
  const form = h("form", {
    "aria-label": "Test a token",
    onsubmit: async (ev) => {
      ev.preventDefault();
      fill(out, h("p.muted", { text: "Checking…" }));
      try {
        const result = await arm("POST", "/providers/Keyless/explain", V.keyless, { clientId, assertion: token.value.trim() });
        fill(out, explainResult(result, claimsOf(token.value), creds));
      } catch (e) {
        fill(out, errorBox(e));
      }
    },
  }, field("Token (a projected service-account token or a CI job's ID token)", token,
    "Checked by the server exactly as the token endpoint would, without issuing anything."), h("div", {}, submit));
  return h("div.panel", {}, h("h2", { text: "Test a token" }), form, out);
}

/** The explain steps, green or red, and the claims that differ from the credentials. */
export function explainResult(result, claims, creds) {
  const steps = result.steps ?? [];
  const verdict = result.wouldSucceed
    ? h("div.okbox", { role: "status" }, "✔ This token would be exchanged.")
    : h("div.error", { role: "status" }, "✘ This token would be refused.");
  const list = h("ol.steps", { "aria-label": "Checks" }, steps.map((s) => h(`li.${s.ok ? "ok" : "bad"}`, {},
    h("span.check", { text: `${s.ok ? "✔ pass" : "✘ fail"} · ${s.check}` }),
    h("span", {}, highlighted(String(s.detail ?? ""), !s.ok)))));
  return h("div", { class: "explain" }, verdict, list, claims ? comparison(claims, creds, steps) : null);
}

function comparison(claims, creds, steps) {
  const failed = new Set(steps.filter((s) => !s.ok).map((s) => s.check));
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const sameIssuer = creds.filter((c) => c.properties?.issuer === claims.iss);
  const closest = sameIssuer.find((c) => c.properties?.subject === claims.sub) ?? sameIssuer[0] ?? creds[0];
  const p = closest?.properties ?? {};
  const rows = [
    ["iss", claims.iss, p.issuer, claims.iss !== p.issuer],
    ["sub", claims.sub, p.subject ?? p.claimsMatchingExpression?.value, p.subject !== undefined && claims.sub !== p.subject],
    ["aud", aud.join(", "), (p.audiences ?? []).join(", "), !(p.audiences ?? []).some((a) => aud.includes(a))],
    ["exp", claims.exp ? new Date(claims.exp * 1000).toLocaleString() : "", "", failed.has("validity period")],
  ];
  return h("div", {},
    h("h3", { text: closest ? `Token claims against credential '${closest.name}'` : "Token claims (the identity has no credential)" }),
    h("div.table-wrap", {}, h("table", {},
      h("thead", {}, h("tr", {}, ["Claim", "In the token", "The credential expects"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, rows.map(([k, tv, cv, differs]) => h("tr", { class: differs && closest ? "differs" : "" },
        h("th", { scope: "row", text: k }),
        h("td.mono", {}, differs && closest ? h("mark.diff", { text: String(tv ?? "") }) : String(tv ?? "")),
        h("td.mono", { text: String(cv ?? "") })))))));
}
