// `keyless console` in a real browser: Debian's Chromium, driven by playwright-core,
// against a real `keyless serve` and `keyless dev-cluster` started here. It walks the
// seed story (create an identity, add a Kubernetes credential, grant Key Vault Secrets
// User, see a failed and a successful sign-in from real token exchanges, reveal a secret)
// and the refusals (no token or secret value in the page before "Reveal", a wrong launch
// secret gets 401, another origin is refused). Screenshots of each page go to
// target/console-screenshots/; with CONSOLE_DOCS_SCREENSHOT=1 the overview is also copied
// to docs/console.png (the README's picture).
//
//   node --test tests/js/console.test.mjs      # KEYLESS_BIN=… to test another build
//
// scripts/test.sh runs it in the python stage (after npm ci; it installs chromium).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtemp, mkdir, copyFile, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import * as rules from "../../crates/keyless/src/console/assets/js/validate.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.KEYLESS_BIN ?? path.join(ROOT, "target/debug/keyless");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.join(ROOT, "target/console-screenshots");
const EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
const SECRET_VALUE = "s3cret-from-the-console-test";
const READY_MS = 60_000;

const children = [];
const cleanups = [];
after(async () => {
  for (const c of children) c.kill("SIGTERM");
  for (const f of cleanups) await f();
});

/** Starts `keyless ARGS` and resolves with its `ready at URL` once it prints it. */
function start(what, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      env: { ...process.env, KEYLESS_DATA_DIR: "", KEYLESS_ADMIN_FILE: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what}: no ready line in ${READY_MS} ms\n${out}\n${err}`)), READY_MS);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /ready at (\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve({ url: m[1], line: out.split("\n").find((l) => l.includes("ready at")) }); }
    });
    child.stderr.on("data", (d) => { err += d; });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code})\n${out}\n${err}`)); });
  });
}

/** Runs the CLI to completion; resolves with stdout. */
function cli(args, env = {}) {
  return new Promise((resolve, reject) => {
    execFile(BIN, args, { env: { ...process.env, KEYLESS_DATA_DIR: "", ...env } }, (error, stdout, stderr) => {
      if (error) reject(new Error(`keyless ${args.join(" ")}: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A token request with a client assertion, as a workload's SDK makes it. */
function exchange(admin, ca, clientId, assertion) {
  const body = new URLSearchParams({
    grant_type: "client_credentials",
    client_id: clientId,
    client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    client_assertion: assertion,
    scope: `${admin.resourceManagerUrl.replace(/\/?$/, "/")}.default`,
  }).toString();
  const url = new URL(`${admin.authorityHost.replace(/\/$/, "")}/${admin.tenantId}/oauth2/v2.0/token`);
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: "POST", ca,
      headers: { "content-type": "application/x-www-form-urlencoded", "content-length": Buffer.byteLength(body) },
    }, (res) => {
      let text = "";
      res.on("data", (d) => { text += d; });
      res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

test("keyless console in Chromium: the seed story and the refusals", { timeout: 300_000 }, async (t) => {
  assert.ok(existsSync(BIN), `${BIN} does not exist: cargo build first (or set KEYLESS_BIN)`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} does not exist: apt-get install chromium`);
  await mkdir(SHOTS, { recursive: true });
  const tmp = await mkdtemp(path.join(os.tmpdir(), "keyless-console-"));
  cleanups.push(() => rm(tmp, { recursive: true, force: true }));

  // --- the systems: a cluster issuer, Keyless trusting it, and the console -------------
  const dc = path.join(tmp, "dev-cluster");
  const tokenFile = path.join(tmp, "token");
  const cluster = await start("dev-cluster", ["dev-cluster", "--data-dir", dc, "--listen", "127.0.0.1:0",
    "--token-file", tokenFile, "--namespace", "payments", "--service-account", "api", "--log-format", "json"]);
  const issuer = cluster.url;
  const data = path.join(tmp, "data");
  await start("serve", ["serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--log-format", "json",
    "--allow-private-issuers", "--trust-ca", path.join(dc, "ca.pem")]);
  const adminFile = path.join(data, "admin.json");
  const admin = JSON.parse(await readFile(adminFile, "utf8"));
  const ca = await readFile(path.isAbsolute(admin.caFile) ? admin.caFile : path.join(data, path.basename(admin.caFile)));
  const env = { KEYLESS_ADMIN_FILE: adminFile };
  // A vault with a secret, made with the CLI (the console shows and reveals it).
  await cli(["group", "create", "-n", "story-rg"], env);
  await cli(["keyvault", "create", "-n", "story-kv", "-g", "story-rg"], env);
  await cli(["keyvault", "secret", "set", "--vault-name", "story-kv", "-n", "db-password", "--value", SECRET_VALUE], env);
  const vaultId = JSON.parse(await cli(["keyvault", "show", "-n", "story-kv", "-g", "story-rg"], env)).id;

  const consoleReady = await start("console", ["console", "--no-open"], env);
  assert.match(consoleReady.line, /^keyless console: ready at http:\/\/127\.0\.0\.1:\d+\/#[A-Za-z0-9_-]{43}$/);
  const consoleUrl = consoleReady.url;
  const [origin, secret] = consoleUrl.split("/#");

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  cleanups.unshift(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });

  await t.test("a wrong launch secret gets 401 and the API's message", async () => {
    const seen = page.waitForResponse((r) => r.url().endsWith("/api/session"));
    await page.goto(`${origin}/#not-the-secret`);
    assert.equal((await seen).status(), 401);
    await page.getByText("ConsoleSecretRequired").waitFor();
    await shot(page, "00-wrong-secret");
  });

  await t.test("another origin is refused, and gets no CORS allowance", async () => {
    // A page on another origin (another loopback port) that knows the console's address.
    const evil = http.createServer((_, res) => {
      res.setHeader("content-type", "text/html");
      res.end("<!doctype html><title>evil</title>");
    });
    await new Promise((r) => evil.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => evil.close(r)));
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${evil.address().port}/`);
    // What the server answered, seen below the page (the page itself may not read it).
    const cdp = await context.newCDPSession(other);
    await cdp.send("Network.enable");
    const urls = new Map();
    cdp.on("Network.requestWillBeSent", (e) => urls.set(e.requestId, e.request.url));
    const refused = new Promise((resolve) => {
      cdp.on("Network.responseReceivedExtraInfo", (e) => {
        if (urls.get(e.requestId) === `${origin}/api/session`) resolve(e);
      });
    });
    const outcome = await other.evaluate(async ([o, s]) => {
      const results = {};
      // A simple request (no preflight): sent with Origin, must be refused by the server.
      try { await fetch(`${o}/api/session`); results.simple = "readable"; } catch (e) { results.simple = `blocked: ${e.name}`; }
      // Even with the secret, the browser's preflight fails: no CORS headers, ever.
      try { await fetch(`${o}/api/session`, { headers: { "X-Keyless-Console": s } }); results.withSecret = "readable"; } catch (e) { results.withSecret = `blocked: ${e.name}`; }
      return results;
    }, [origin, secret]);
    const response = await refused;
    assert.equal(response.statusCode, 403);
    assert.ok(!Object.keys(response.headers).some((k) => k.toLowerCase().startsWith("access-control-")), JSON.stringify(response.headers));
    assert.deepEqual(outcome, { simple: "blocked: TypeError", withSecret: "blocked: TypeError" });
    await other.close();
  });

  await t.test("the launch URL opens the console and the secret leaves the address bar", async () => {
    await page.goto(consoleUrl);
    await page.getByRole("heading", { name: "Overview", exact: true }).waitFor();
    assert.ok(!page.url().includes(secret), page.url());
    const html = await page.content();
    assert.ok(!html.includes(secret), "the secret is in the page");
    assert.ok(!html.includes("eyJ"), "a token is in the page");
    await shot(page, "01-overview-empty");
  });

  let principalId = "";
  let clientId = "";
  await t.test("create an identity", async () => {
    await page.getByRole("link", { name: "Identities", exact: true }).click();
    await page.getByRole("heading", { name: "Identities", exact: true }).waitFor();
    const name = page.getByLabel("Name", { exact: true });
    await name.fill("x");
    await page.getByText("Identity name 'x' is invalid").waitFor();
    await name.fill("payments-api");
    await page.getByLabel("Resource group").fill("story-rg");
    await page.getByRole("button", { name: "Create identity" }).click();
    const row = page.getByRole("row").filter({ hasText: "payments-api" });
    await row.waitFor();
    assert.equal(await row.getByRole("button", { name: /^Copy / }).count(), 2);
    const ids = await row.locator(".mono").allTextContents();
    [clientId, principalId] = ids;
    assert.match(clientId, /^[0-9a-f-]{36}$/);
    assert.match(principalId, /^[0-9a-f-]{36}$/);
    await row.getByRole("button", { name: "Copy client id of payments-api" }).click();
    await page.getByRole("status").getByText("client id of payments-api copied").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), clientId);
    await shot(page, "02-identities");
  });

  await t.test("keyboard only: skip link, navigation, a form, visible focus", async () => {
    // A fresh load, so that focus starts at the top of the document.
    await page.goto(`${origin}/#/identities`);
    await page.reload();
    await page.getByRole("heading", { name: "Identities", exact: true }).waitFor();
    const focused = () => page.evaluate(() => {
      const el = document.activeElement;
      return { text: (el.textContent || el.getAttribute("name") || "").trim(), outline: getComputedStyle(el).outlineStyle };
    });
    await page.keyboard.press("Tab");
    assert.deepEqual(await focused(), { text: "Skip to content", outline: "solid" });
    for (const link of ["Overview", "Identities", "Role assignments", "Vaults", "Sign-in log"]) {
      await page.keyboard.press("Tab");
      assert.deepEqual(await focused(), { text: link, outline: "solid" });
    }
    await page.keyboard.press("Tab");
    assert.equal((await focused()).text, "name");
    await page.keyboard.type("kbd-app");
    await page.keyboard.press("Tab");
    assert.equal((await focused()).text, "group");
    await page.keyboard.press("Enter");
    await page.getByRole("row").filter({ hasText: "kbd-app" }).waitFor();
  });

  await t.test("add a Kubernetes credential, with inline validation and the API's own error", async () => {
    await page.getByRole("link", { name: "payments-api", exact: true }).first().click();
    await page.getByRole("heading", { name: "Identity payments-api", exact: true }).waitFor();
    await page.getByRole("button", { name: "Kubernetes service account" }).click();
    // The preset leaves the issuer to fill in: flagged as you type.
    await page.getByText("it has no host").waitFor();
    const issuerBox = page.getByLabel("Issuer", { exact: true });
    await issuerBox.fill("http://cluster.example");
    await page.getByText("it must be an https URL").first().waitFor();
    assert.equal(await issuerBox.getAttribute("aria-invalid"), "true");
    // Submitted anyway: the API refuses, and its message is shown.
    await page.getByRole("button", { name: "Add credential" }).click();
    await page.locator(".error").filter({ hasText: "BadRequest" }).waitFor();
    await issuerBox.fill(issuer);
    assert.equal(await issuerBox.getAttribute("aria-invalid"), "false");
    await page.getByLabel("Subject", { exact: true }).fill("system:serviceaccount:payments:api");
    await page.getByLabel("Name", { exact: true }).fill("k8s-payments");
    await page.getByRole("button", { name: "Add credential" }).click();
    await page.getByRole("row").filter({ hasText: "k8s-payments" }).waitFor();
    await shot(page, "03-credentials");
  });

  await t.test("the form's inline rules agree with the API, message for message", async () => {
    const call = async (method, armPath, body) => {
      const r = await fetch(`${origin}/api/arm${armPath}?api-version=2023-01-31`, {
        method,
        headers: { "X-Keyless-Console": secret, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await r.text();
      return { status: r.status, body: text ? JSON.parse(text) : null };
    };
    const identityPath = `/subscriptions/${admin.subscriptionId}/resourceGroups/story-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/payments-api`;
    const valid = { name: "rule-check", issuer: "https://issuer.example/tenant", subject: "repo:org/app:ref:refs/heads/main", expression: "", audience: EXCHANGE_AUDIENCE };
    const cases = [
      {}, // the baseline is accepted
      { name: "ab" }, { name: "-abc" }, { name: "a.b.c" }, { name: "x".repeat(121) },
      { issuer: "http://issuer.example" }, { issuer: "https://" }, { issuer: "https://user@issuer.example" },
      { issuer: "https://issuer.example/?x=1" }, { issuer: "https://issuer.example/#f" },
      { issuer: "https://issuer example" }, { issuer: `https://issuer.example/${"p".repeat(600)}` },
      { audience: "" }, { audience: "   " },
      { subject: "" }, { subject: "a\u0001b" }, { subject: "s".repeat(601) },
      { subject: "", expression: "claims['sub'] eq 'x'" },
      { expression: "claims['sub'] eq 'x'" },
    ];
    for (const change of cases) {
      const form = { ...valid, ...change };
      const problems = rules.credentialProblems(form);
      const r = await call("PUT", `${identityPath}/federatedIdentityCredentials/${encodeURIComponent(form.name)}`, rules.credentialBody(form));
      const label = JSON.stringify(change);
      if (problems.length === 0) {
        assert.ok(r.status === 200 || r.status === 201, `${label}: the rules accept it, the API said ${JSON.stringify(r.body)}`);
        await call("DELETE", `${identityPath}/federatedIdentityCredentials/${encodeURIComponent(form.name)}`);
      } else {
        assert.equal(r.status, 400, `${label}: the rules refuse it (${problems[0]}), the API said ${JSON.stringify(r.body)}`);
        assert.equal(problems[0], r.body.error.message, label);
      }
    }
  });

  await t.test("grant Key Vault Secrets User on the vault", async () => {
    await page.goto(`${origin}/#/roles?principal=${principalId}&scope=${encodeURIComponent(vaultId)}`);
    await page.getByRole("heading", { name: "Grant a role", exact: true }).waitFor();
    await page.getByLabel("Role", { exact: true }).selectOption({ label: "Key Vault Secrets User" });
    await page.getByText(/Key Vault Secrets User: .+/).waitFor();
    await page.getByRole("button", { name: "Grant" }).click();
    await page.getByRole("table", { name: "Role assignments" }).getByRole("row")
      .filter({ hasText: "Key Vault Secrets User" }).filter({ hasText: "payments-api" }).waitFor();
    await shot(page, "04-roles");
  });

  let intruderToken = "";
  await t.test("a failed and a successful sign-in, from real exchanges", async () => {
    const good = (await readFile(tokenFile, "utf8")).trim();
    const ok = await exchange(admin, ca, clientId, good);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    intruderToken = (await cli(["dev-cluster", "mint", "--data-dir", dc, "--namespace", "payments", "--service-account", "intruder"])).trim();
    const bad = await exchange(admin, ca, clientId, intruderToken);
    assert.ok([400, 401].includes(bad.status), JSON.stringify(bad.body));
    assert.match(bad.body.error_description, /AADSTS700213/);
    // The sign-in log is written asynchronously: wait for both rows (the page is reloaded
    // until they appear, as an operator would).
    await page.goto(`${origin}/#/signins?identity=${clientId}&since=1h`);
    const failure = page.getByRole("row").filter({ hasText: "failure" }).filter({ hasText: "700213" });
    const success = page.getByRole("row").filter({ hasText: "success" }).filter({ hasText: "payments-api" });
    await page.getByRole("heading", { name: "Sign-in log", exact: true }).waitFor();
    for (let i = 0; i < 50 && ((await failure.count()) === 0 || (await success.count()) === 0); i++) {
      await page.reload();
      await page.getByRole("heading", { name: "Sign-in log", exact: true }).waitFor();
    }
    await failure.first().waitFor();
    await success.first().waitFor();
    await shot(page, "05-signin-log");
    await failure.first().getByRole("link", { name: "Why?" }).click();
    await page.getByRole("heading", { name: "Why did this sign-in fail?", exact: true }).waitFor();
    await page.getByText("No federated credential matches the token's subject").waitFor();
    await shot(page, "06-signin-explained");
  });

  await t.test("test a token: every check, the failing one red with the differing field", async () => {
    await page.getByRole("link", { name: /federated credentials/ }).click();
    await page.getByLabel(/^Token/).fill(intruderToken);
    await page.getByRole("button", { name: "Explain" }).click();
    await page.getByText("This token would be refused.").waitFor();
    const failed = page.locator(".steps li.bad");
    assert.ok((await failed.count()) >= 1);
    assert.ok((await page.locator(".steps li.ok").count()) >= 5);
    assert.match(await failed.first().textContent(), /federated credential/);
    assert.equal((await page.locator("tr.differs th").allTextContents()).join(","), "sub");
    assert.equal(await page.locator("tr.differs mark.diff").textContent(), "system:serviceaccount:payments:intruder");
    await shot(page, "07-test-a-token");
  });

  await t.test("vaults and secrets: no value before Reveal, the value after", async () => {
    await page.getByRole("link", { name: "Vaults", exact: true }).click();
    await page.getByRole("link", { name: "story-kv" }).click();
    await page.getByRole("heading", { name: "Vault story-kv", exact: true }).waitFor();
    await page.getByRole("row").filter({ hasText: "db-password" }).waitFor();
    let html = await page.content();
    assert.ok(!html.includes(SECRET_VALUE), "the value is in the page before Reveal");
    assert.ok(!html.includes("eyJ"), "a token is in the page");
    await shot(page, "08-secrets");
    await page.getByRole("button", { name: "Reveal the value of db-password" }).click();
    await page.getByText(SECRET_VALUE).waitFor();
    html = await page.content();
    assert.ok(!html.includes("eyJ"), "a token is in the page");
    await shot(page, "09-secret-revealed");
    // A new version from the console; the list shows both, and Reveal the newest.
    await page.getByLabel("Name", { exact: true }).fill("db-password");
    await page.getByLabel("Value", { exact: true }).fill(`${SECRET_VALUE}-v2`);
    await page.getByRole("button", { name: "Set secret" }).click();
    await page.getByRole("status").getByText("Set db-password").waitFor();
    assert.ok(!(await page.content()).includes(`${SECRET_VALUE}-v2`), "the new value is shown unasked");
    await page.getByRole("button", { name: "Versions of db-password" }).click();
    await page.getByRole("table", { name: "Versions of db-password" }).getByRole("row").nth(2).waitFor();
    assert.equal(await page.getByRole("table", { name: "Versions of db-password" }).getByRole("row").count(), 3);
    await page.getByRole("button", { name: "Reveal the value of db-password" }).click();
    await page.getByText(`${SECRET_VALUE}-v2`).waitFor();
  });

  await t.test("soft-deleted secrets: delete, recover, purge", async () => {
    page.on("dialog", (d) => d.accept());
    const deletedTable = page.getByRole("table", { name: /Soft-deleted secrets/ });
    await page.getByRole("button", { name: "Delete secret db-password" }).click();
    await deletedTable.getByRole("row").filter({ hasText: "db-password" }).waitFor();
    await page.getByText("No secrets in this vault.").waitFor();
    await shot(page, "10-secret-deleted");
    await page.getByRole("button", { name: "Recover secret db-password" }).click();
    await page.getByText("No deleted secrets.").waitFor();
    await page.getByRole("button", { name: "Reveal the value of db-password" }).click();
    await page.getByText(`${SECRET_VALUE}-v2`).waitFor();
    await page.getByRole("button", { name: "Delete secret db-password" }).click();
    await page.getByRole("button", { name: "Purge secret db-password" }).click();
    await page.getByText("No deleted secrets.").waitFor();
    await page.getByText("No secrets in this vault.").waitFor();
  });

  await t.test("revoke the role", async () => {
    await page.goto(`${origin}/#/roles?principal=${principalId}&scope=${encodeURIComponent(vaultId)}`);
    const row = page.getByRole("table", { name: "Role assignments" }).getByRole("row").filter({ hasText: "Key Vault Secrets User" });
    await row.getByRole("button", { name: /^Revoke/ }).click();
    await page.getByText("No role assignments here.").waitFor();
  });

  await t.test("delete an identity", async () => {
    await page.getByRole("link", { name: "Identities", exact: true }).click();
    await page.getByRole("button", { name: "Delete identity kbd-app" }).click();
    await page.getByRole("status").getByText("Deleted kbd-app").waitFor();
    assert.equal(await page.getByRole("row").filter({ hasText: "kbd-app" }).count(), 0);
    await page.getByRole("row").filter({ hasText: "payments-api" }).waitFor();
  });

  await t.test("the overview counts and charts it all", async () => {
    await page.getByRole("link", { name: "Overview", exact: true }).click();
    await page.getByRole("heading", { name: "Top failure reasons", exact: true }).waitFor();
    await page.getByRole("cell", { name: /700213/ }).first().waitFor();
    assert.ok((await page.locator("svg rect").count()) >= 48);
    await shot(page, "11-overview");
    if (process.env.CONSOLE_DOCS_SCREENSHOT === "1") {
      await copyFile(path.join(SHOTS, "11-overview.png"), path.join(ROOT, "docs/console.png"));
    }
  });

  assert.deepEqual(consoleErrors.filter((e) => !/401|403|Failed to load resource|CORS/.test(e)), []);
});
