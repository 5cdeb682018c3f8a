"""Issue 2, "Done means": the real, unmodified azure-identity (from PyPI) gets a management
token from Keyless with ClientSecretCredential(..., authority=..., disable_instance_discovery=True)
and uses it to create an identity and a federated credential over plain HTTPS calls.
Restarting the server keeps every object, key and the admin credential."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest
from azure.core.exceptions import ClientAuthenticationError

RG_API = "2021-04-01"
MSI_API = "2023-01-31"
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
FIC_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
FIC_PROPERTIES = {
    "issuer": "https://issuer.example.com/cluster1",
    "subject": "system:serviceaccount:default:workload-sa",
    "audiences": ["api://AzureADTokenExchange"],
}


def jwt_claims(token: str) -> dict:
    """Decode a JWT's payload without verifying it (the server verifies; we only look)."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a compact JWS: {token[:40]}..."
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def describe(resp) -> str:
    return f"{resp.request.method} {resp.url} -> {resp.status_code}: {resp.text[:2000]}"


def assert_arm_error(resp, status: int) -> dict:
    assert resp.status_code == status, describe(resp)
    body = resp.json()
    err = body.get("error")
    assert isinstance(err, dict), describe(resp)
    assert isinstance(err.get("code"), str) and err["code"], describe(resp)
    assert isinstance(err.get("message"), str) and err["message"], describe(resp)
    return err


def rg_path(sub: str, rg: str) -> str:
    return f"subscriptions/{sub}/resourcegroups/{rg}"


def identity_path(sub: str, rg: str, name: str) -> str:
    return (
        f"subscriptions/{sub}/resourceGroups/{rg}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )


def create_identity(arm, sub: str, tenant: str, rg: str, name: str) -> dict:
    r = arm.put(rg_path(sub, rg), {"location": "westeurope"}, RG_API)
    assert r.status_code in (200, 201), describe(r)
    r = arm.put(identity_path(sub, rg, name), {"location": "westeurope"}, MSI_API)
    assert r.status_code == 201, describe(r)
    identity = r.json()
    props = identity["properties"]
    for field in ("clientId", "principalId", "tenantId"):
        assert GUID_RE.match(props.get(field) or ""), f"{field} is not a GUID: {identity}"
    assert props["tenantId"] == tenant, identity
    assert identity["name"] == name, identity
    assert identity["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities", identity
    assert identity["location"] == "westeurope", identity
    assert identity["id"].lower() == "/" + identity_path(sub, rg, name).lower(), identity
    return identity


# --- token service ------------------------------------------------------------------------


def test_healthz(server):
    import requests

    r = requests.get(server.url + "/healthz", verify=server.admin.ca_file, timeout=30)
    assert r.status_code == 200, describe(r)


def test_admin_json_shape(server):
    a = server.admin
    assert GUID_RE.match(a.tenant_id) and GUID_RE.match(a.subscription_id) and GUID_RE.match(a.client_id)
    assert a.client_secret
    assert a.authority_host.startswith("https://") and not a.authority_host.endswith("/")
    assert a.resource_manager_url == a.authority_host + "/"
    assert a.authority_host == server.url, "admin.json authorityHost differs from the ready URL"


def test_sdk_gets_management_token(server):
    a = server.admin
    with server.credential() as cred:
        before = int(time.time())
        tok = cred.get_token(a.resource_manager_url + ".default")
    assert tok.expires_on > before + 300, "token lifetime should be about an hour"
    claims = jwt_claims(tok.token)
    assert claims["aud"] == a.resource_manager_url, claims
    assert claims["tid"] == a.tenant_id, claims
    assert claims["appid"] == a.client_id, claims


def test_az_style_scope_names_the_same_resource(server):
    # az asks for `https://HOST:PORT//.default` (resource URL + "/.default"); the issue says
    # both spellings name the resource manager.
    a = server.admin
    with server.credential() as cred:
        tok = cred.get_token(a.resource_manager_url + "/.default")
    assert jwt_claims(tok.token)["aud"] == a.resource_manager_url
    r = server.arm(tok.token).get(f"subscriptions/{a.subscription_id}", "2022-12-01")
    assert r.status_code == 200, describe(r)


def test_wrong_client_secret_is_refused(server):
    a = server.admin
    with server.credential(client_secret="not-the-secret-" + uuid.uuid4().hex) as cred:
        with pytest.raises(ClientAuthenticationError) as info:
            cred.get_token(a.resource_manager_url + ".default")
    assert "AADSTS7000215" in str(info.value), str(info.value)


# --- management plane with the SDK's token ----------------------------------------------------


def test_sdk_token_creates_identity_and_federated_credential(server):
    a = server.admin
    arm = server.arm(server.management_token())
    rg, name, fic = unique("rg-py"), unique("id-py"), unique("fic-py")

    identity = create_identity(arm, a.subscription_id, a.tenant_id, rg, name)

    fic_path = identity_path(a.subscription_id, rg, name) + f"/federatedIdentityCredentials/{fic}"
    r = arm.put(fic_path, {"properties": FIC_PROPERTIES}, MSI_API)
    assert r.status_code == 201, describe(r)
    created = r.json()
    assert created["type"] == FIC_TYPE, created
    assert created["name"] == fic, created
    assert created["id"].lower() == "/" + fic_path.lower(), created
    assert {k: created["properties"].get(k) for k in FIC_PROPERTIES} == FIC_PROPERTIES, created

    # Same body again is an update (200), not a duplicate issuer+subject.
    r = arm.put(fic_path, {"properties": FIC_PROPERTIES}, MSI_API)
    assert r.status_code == 200, describe(r)

    # Read back.
    r = arm.get(identity_path(a.subscription_id, rg, name), MSI_API)
    assert r.status_code == 200, describe(r)
    assert r.json()["properties"] == identity["properties"], r.json()

    r = arm.get(fic_path, MSI_API)
    assert r.status_code == 200, describe(r)
    assert {k: r.json()["properties"].get(k) for k in FIC_PROPERTIES} == FIC_PROPERTIES, r.json()

    r = arm.get(identity_path(a.subscription_id, rg, name) + "/federatedIdentityCredentials", MSI_API)
    assert r.status_code == 200, describe(r)
    listed = r.json()["value"]
    assert [c["name"] for c in listed] == [fic], listed
    assert listed[0]["type"] == FIC_TYPE, listed
    assert {k: listed[0]["properties"].get(k) for k in FIC_PROPERTIES} == FIC_PROPERTIES, listed


def test_request_without_token_is_401(server):
    a = server.admin
    r = server.arm(None).put(rg_path(a.subscription_id, unique("rg-anon")), {"location": "westeurope"}, RG_API)
    assert_arm_error(r, 401)
    r = server.arm(None).get(f"subscriptions/{a.subscription_id}", "2022-12-01")
    assert_arm_error(r, 401)


def test_garbage_token_is_401(server):
    a = server.admin
    r = server.arm("not.a.jwt").get(f"subscriptions/{a.subscription_id}", "2022-12-01")
    assert_arm_error(r, 401)


def test_token_for_another_audience_is_refused(server):
    # The only other resource the SDK can get a token for from Keyless is a vault's
    # (`https://vault.HOST:PORT`); such a token must not open the management plane.
    a = server.admin
    host = a.authority_host.removeprefix("https://")
    with server.credential() as cred:
        tok = cred.get_token(f"https://vault.{host}/.default")
    assert jwt_claims(tok.token)["aud"].rstrip("/") == f"https://vault.{host}"
    r = server.arm(tok.token).get(f"subscriptions/{a.subscription_id}", "2022-12-01")
    assert_arm_error(r, 401)


# --- restart ------------------------------------------------------------------------------


def test_restart_keeps_admin_credential_and_identities(keyless_factory, monkeypatch):
    first = keyless_factory()
    first.trust_ca(monkeypatch)
    a = first.admin
    rg, name = unique("rg-restart"), unique("id-restart")
    identity = create_identity(first.arm(first.management_token()), a.subscription_id, a.tenant_id, rg, name)
    first.stop_cleanly()

    second = keyless_factory(data_dir=first.data_dir)  # new port: listen is 127.0.0.1:0 again
    second.trust_ca(monkeypatch)
    b = second.admin
    assert (b.tenant_id, b.subscription_id, b.client_id, b.client_secret, b.ca_file) == (
        a.tenant_id, a.subscription_id, a.client_id, a.client_secret, a.ca_file,
    ), "admin.json changed across a restart"
    # The credentials from the first admin.json still authenticate (token via the SDK).
    token = second.management_token(admin=a)
    r = second.arm(token).get(identity_path(a.subscription_id, rg, name), MSI_API)
    assert r.status_code == 200, describe(r)
    assert r.json()["properties"] == identity["properties"], r.json()


def test_restart_on_same_port_keeps_signing_keys(keyless_factory, monkeypatch):
    # A token minted before a restart is still accepted after it: the signing key was
    # persisted, not regenerated. Same port, so the token's audience still names the server.
    first = keyless_factory()
    first.trust_ca(monkeypatch)
    a = first.admin
    token = first.management_token()
    port = first.url.rsplit(":", 1)[1]
    first.stop_cleanly()

    second = keyless_factory(data_dir=first.data_dir, listen=f"127.0.0.1:{port}")
    assert second.admin.resource_manager_url == a.resource_manager_url
    r = second.arm(token).get(f"subscriptions/{a.subscription_id}", "2022-12-01")
    assert r.status_code == 200, describe(r)
