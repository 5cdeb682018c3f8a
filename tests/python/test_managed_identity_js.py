"""Issue 15 with the JavaScript SDK: the real, unmodified npm `@azure/identity`
`ManagedIdentityCredential` / `DefaultAzureCredential` and `@azure/keyvault-secrets`
(`tests/js`, pinned by its package-lock.json; `./scripts/test.sh` installs it) get their tokens
from `keyless imds` and read a vault secret:

- App Service path: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER` (what the webhook's native-sidecar
  mode injects); MSAL Node sends no `Metadata` header there and reads `expires_on`.
- IMDS path through `AZURE_POD_IDENTITY_AUTHORITY_HOST` (MSAL Node asks for the token path
  with a trailing slash; the SDK skips its availability probe when that variable is set).
- IMDS path at 169.254.169.254 itself, with the script's connections to that address sent to
  the sidecar (what the proxy-sidecar mode's iptables rule does): `DefaultAzureCredential`
  first probes IMDS with no query and no header under a 1 s timeout, and needs the sidecar's
  prompt 400 to go on.

Refusals reach the app with their reason: another identity's client id on both paths, and a
wrong `X-IDENTITY-HEADER`.

Each case runs `node tests/js/managed_identity.mjs PLAN` in the app's environment and asserts
on the JSON line it prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
import pytest

from conftest import REPO_ROOT
from test_managed_identity import SOURCE_VARS, start_sidecar, sidecars, vault_with_secret  # noqa: F401

JS_DIR = REPO_ROOT / "tests" / "js"
SCRIPT = JS_DIR / "managed_identity.mjs"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not installed: the JavaScript SDK tests need Node.js 20+"),
]

# MSAL Node retries some failures; a refusal must come back well before this.
NODE_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def js_sdk() -> Path:
    """tests/js/node_modules, as `./scripts/test.sh` installs it (`npm ci`)."""
    for package in ("@azure/identity", "@azure/keyvault-secrets"):
        if not (JS_DIR / "node_modules" / package / "package.json").is_file():
            pytest.fail(f"{package} is not installed in {JS_DIR}/node_modules: run ./scripts/test.sh python "
                        f"(or `npm ci` in tests/js)", pytrace=False)
    return JS_DIR


def run_js(federation, plan: dict, **variables: str) -> dict:
    """Runs the script as the app container would be: none of the workload identity variables,
    Keyless' CA through NODE_EXTRA_CA_CERTS, and `variables`."""
    env = {k: v for k, v in os.environ.items() if k not in SOURCE_VARS}
    env["NODE_EXTRA_CA_CERTS"] = federation.server.admin.ca_file
    # DefaultAzureCredential's production chain only (environment, workload identity, managed
    # identity; the managed identity credential still probes IMDS): nothing from the machine's
    # developer tools (az, azd, PowerShell) may answer in its place.
    env["AZURE_TOKEN_CREDENTIALS"] = "prod"
    env.update(variables)
    started = time.monotonic()
    proc = subprocess.run([NODE, str(SCRIPT), json.dumps(plan)], cwd=JS_DIR, env=env,
                          capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    took = time.monotonic() - started
    assert proc.returncode == 0, f"node exited with {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line from the script\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    result = json.loads(lines[-1])
    result["took_s"] = took
    result["stderr"] = proc.stderr
    return result


def own_token_claims(federation, result: dict, identity) -> dict:
    assert result["ok"], result
    _, claims = federation.decode(result["token"])
    assert claims["oid"] == identity.principal_id, claims
    assert claims["appid"] == identity.client_id, claims
    # The SDK read the expiry from the sidecar's answer (expires_on / expires_in as strings).
    assert abs(result["expiresOnTimestamp"] / 1000 - claims["exp"]) <= 5, (result["expiresOnTimestamp"], claims)
    return claims


def test_js_managed_identity_credential_through_app_service(federation, vault_hosts, js_sdk, start_sidecar):
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)
    app = dict(IDENTITY_ENDPOINT=sidecar.identity_endpoint, IDENTITY_HEADER=sidecar.identity_header)

    result = run_js(federation, {"credential": "managed", "scope": federation.resource_manager_scope,
                                 "vault": {"uri": uri, "name": name}}, **app)
    own_token_claims(federation, result, identity)
    assert result["secret"] == value, result

    # Naming its own identity works: by client id (any letter case) and by object id.
    result = run_js(federation, {"credential": "managed", "options": {"clientId": identity.client_id.upper()},
                                 "scope": federation.vault_scope}, **app)
    own_token_claims(federation, result, identity)
    result = run_js(federation, {"credential": "managed", "options": {"objectId": identity.principal_id},
                                 "scope": federation.resource_manager_scope}, **app)
    own_token_claims(federation, result, identity)

    # DefaultAzureCredential sends AZURE_CLIENT_ID as the managed identity's client id.
    result = run_js(federation, {"credential": "default", "vault": {"uri": uri, "name": name}},
                    AZURE_CLIENT_ID=identity.client_id, **app)
    assert result["ok"] and result["secret"] == value, result


def test_js_managed_identity_credential_through_the_imds_path(federation, vault_hosts, js_sdk, start_sidecar):
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)

    result = run_js(federation, {"credential": "managed", "scope": federation.resource_manager_scope,
                                 "vault": {"uri": uri, "name": name}},
                    AZURE_POD_IDENTITY_AUTHORITY_HOST=sidecar.url)
    own_token_claims(federation, result, identity)
    assert result["secret"] == value, result
    # By resource id: MSAL Node sends it as msi_res_id; the token is its own identity's.
    result = run_js(federation, {"credential": "managed", "options": {"resourceId": identity.id},
                                 "scope": federation.vault_scope},
                    AZURE_POD_IDENTITY_AUTHORITY_HOST=sidecar.url)
    claims = own_token_claims(federation, result, identity)
    assert claims["xms_mirid"].lower() == identity.id.lower(), claims


def test_js_default_credential_probes_imds_at_its_address(federation, vault_hosts, js_sdk, start_sidecar):
    """No AZURE_POD_IDENTITY_AUTHORITY_HOST: the SDK talks to 169.254.169.254 (redirected to
    the sidecar as by the proxy-sidecar mode). DefaultAzureCredential's probe (no query, no
    Metadata header, 1 s timeout, no retries) must get an answer, or it reports IMDS as
    unavailable and never asks for a token."""
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)
    redirect = sidecar.url.removeprefix("http://")

    result = run_js(federation, {"credential": "default", "scope": federation.resource_manager_scope,
                                 "vault": {"uri": uri, "name": name}, "redirect_imds": redirect},
                    AZURE_CLIENT_ID=identity.client_id)
    own_token_claims(federation, result, identity)
    assert result["secret"] == value, result
    # ManagedIdentityCredential alone does not probe; the same address works for it too.
    result = run_js(federation, {"credential": "managed", "scope": federation.vault_scope,
                                 "redirect_imds": redirect})
    own_token_claims(federation, result, identity)


def refused(result: dict) -> str:
    assert not result["ok"], result
    return result["message"]


def test_js_refusals_reach_the_app_with_their_reason(federation, js_sdk, start_sidecar):
    identity = federation.create_identity()
    other = federation.create_identity()
    sidecar = start_sidecar(identity)
    scope = federation.resource_manager_scope
    app_service = dict(IDENTITY_ENDPOINT=sidecar.identity_endpoint, IDENTITY_HEADER=sidecar.identity_header)
    imds = dict(AZURE_POD_IDENTITY_AUTHORITY_HOST=sidecar.url)

    # Another identity's client id / object id: refused on both paths, with IMDS' reason, as
    # a 4xx the SDK does not spend its retries on.
    for env in (app_service, imds):
        for options in ({"clientId": other.client_id}, {"objectId": other.principal_id}):
            result = run_js(federation, {"credential": "managed", "options": options, "scope": scope}, **env)
            message = refused(result)
            assert "Identity not found" in message, (env, options, result)
            assert result["elapsed_ms"] < 5000, (env, options, result)

    # A wrong X-IDENTITY-HEADER: refused, and the message says which header.
    result = run_js(federation, {"credential": "managed", "scope": scope},
                    IDENTITY_ENDPOINT=sidecar.identity_endpoint, IDENTITY_HEADER="not-the-secret")
    assert "X-IDENTITY-HEADER" in refused(result), result
    assert result["elapsed_ms"] < 5000, result
