// The real, unmodified @azure/identity ManagedIdentityCredential / DefaultAzureCredential
// (and @azure/keyvault-secrets) against `keyless imds`. Driven by
// tests/python/test_managed_identity_js.py, which starts Keyless, the dev cluster and the
// sidecar and sets the app's environment (IDENTITY_ENDPOINT + IDENTITY_HEADER, or
// AZURE_POD_IDENTITY_AUTHORITY_HOST, and NODE_EXTRA_CA_CERTS for Keyless' CA).
//
//   node managed_identity.mjs '<plan JSON>'
//
// plan: {
//   "credential": "managed" | "default",
//   "options": {...},                 // ManagedIdentityCredential options (clientId, objectId, resourceId)
//   "scope": "https://.../.default",  // get a token for it (optional)
//   "vault": {"uri": ..., "name": ...},  // read a secret with SecretClient (optional)
//   "redirect_imds": "127.0.0.1:PORT"  // optional: connections to 169.254.169.254:80 go there
// }
//
// Prints one JSON line: {"ok": true, "token": ..., "expiresOnTimestamp": ..., "secret": ...,
// "elapsed_ms": ...} or {"ok": false, "name": ..., "message": ..., "elapsed_ms": ...}.
// Exits 0 either way: the Python test asserts on the outcome.

import dns from "node:dns";
import net from "node:net";
import { DefaultAzureCredential, ManagedIdentityCredential } from "@azure/identity";
import { SecretClient } from "@azure/keyvault-secrets";

const plan = JSON.parse(process.argv[2] ?? "{}");

// Vault hosts are `{vault}.vault.localhost`, which the system resolver does not answer here
// (and tests must not edit /etc/hosts): in this process only, those names resolve to the
// loopback address every test server listens on. URL, Host header, SNI and certificate
// checks still use the vault's real name.
const VAULT_SUFFIX = ".vault.localhost";
const realLookup = dns.lookup;
dns.lookup = function lookup(hostname, options, callback) {
  if (typeof hostname === "string" && hostname.toLowerCase().replace(/\.$/, "").endsWith(VAULT_SUFFIX)) {
    return realLookup.call(this, "127.0.0.1", options, callback);
  }
  return realLookup.call(this, hostname, options, callback);
};

// What the proxy-sidecar mode's init container does with iptables, done in-process: a TCP
// connection to IMDS' address goes to the sidecar instead. The HTTP request (path, Host
// header) is exactly what the SDK sends to 169.254.169.254, and the SDK's own endpoint
// logic (no AZURE_POD_IDENTITY_AUTHORITY_HOST, so it probes IMDS first) is exercised.
if (plan.redirect_imds) {
  const [host, port] = plan.redirect_imds.split(":");
  const realConnect = net.Socket.prototype.connect;
  const redirected = (options) =>
    options && typeof options === "object" && options.host === "169.254.169.254" &&
    Number(options.port ?? 80) === 80;
  net.Socket.prototype.connect = function connect(...args) {
    // net.createConnection (what http's agents call) passes its normalized arguments as
    // one array, [options, callback], marked with an internal symbol: edit it in place.
    const list = Array.isArray(args[0]) ? args[0] : args;
    if (redirected(list[0])) {
      list[0] = { ...list[0], host, port: Number(port) };
    }
    return realConnect.apply(this, args);
  };
}

function credential() {
  if (plan.credential === "default") {
    return new DefaultAzureCredential(plan.options ?? {});
  }
  return new ManagedIdentityCredential(plan.options ?? {});
}

const started = Date.now();
const out = {};
try {
  const cred = credential();
  if (plan.scope) {
    const token = await cred.getToken(plan.scope);
    out.token = token.token;
    out.expiresOnTimestamp = token.expiresOnTimestamp;
  }
  if (plan.vault) {
    const client = new SecretClient(plan.vault.uri, cred);
    const secret = await client.getSecret(plan.vault.name);
    out.secret = secret.value;
  }
  out.ok = true;
} catch (err) {
  out.ok = false;
  out.name = err?.name;
  out.message = String(err?.message ?? err);
}
out.elapsed_ms = Date.now() - started;
process.stdout.write(JSON.stringify(out) + "\n");
