"""Issue 15: applications that never read the federated token file — the real, unmodified
azure-identity `ManagedIdentityCredential` and `DefaultAzureCredential` — get their tokens
from `keyless imds`, the managed-identity sidecar, on both of its paths:

- App Service (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`, what the webhook's native-sidecar
  mode injects), and
- IMDS (`AZURE_POD_IDENTITY_AUTHORITY_HOST` points the SDK at the sidecar instead of
  169.254.169.254, as the proxy-sidecar mode's redirection does),

and read a vault secret with azure-keyvault-secrets. The refusals reach the app with their
reason: a missing `Metadata` header, a wrong `X-IDENTITY-HEADER`, another identity's
client id, and an expired projected token (AADSTS700024), after which the rotated file is
used within seconds."""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, DefaultAzureCredential, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from cryptography.hazmat.primitives.asymmetric import rsa

from conftest import KeylessProcess, keyless_bin

# Variables that would make the SDK pick another credential or another managed-identity
# source than the one a test sets up.
SOURCE_VARS = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME", "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


class ImdsSidecar(KeylessProcess):
    """One running `keyless imds` for `identity`, in the environment the webhook injects into
    the sidecar container."""

    what = "imds"

    def __init__(self, federation, identity, token_file: Path, identity_header: str,
                 extra_args: tuple[str, ...] = ()):
        self.identity_header = identity_header
        env = {k: v for k, v in os.environ.items() if k not in SOURCE_VARS}
        env.update(
            AZURE_CLIENT_ID=identity.client_id,
            AZURE_TENANT_ID=identity.tenant_id,
            AZURE_FEDERATED_TOKEN_FILE=str(token_file),
            AZURE_AUTHORITY_HOST=federation.authority_host,
            IDENTITY_HEADER=identity_header,
            KEYLESS_LOG="info",
        )
        self._start([
            str(keyless_bin()), "imds", "--listen", "127.0.0.1:0",
            "--ca-file", federation.server.admin.ca_file,
            "--failure-cache-seconds", "1",
            *extra_args,
        ], env=env)

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/msi/token"


@pytest.fixture
def sidecars() -> Iterator[list[ImdsSidecar]]:
    started: list[ImdsSidecar] = []
    yield started
    for s in started:
        print(f"--- keyless imds output ---\n{s.output()}")
        s.stop_cleanly()


@pytest.fixture
def start_sidecar(federation, sidecars):
    def start(identity, token_file: Optional[Path] = None) -> ImdsSidecar:
        s = ImdsSidecar(federation, identity, token_file or federation.cluster.token_file,
                        secrets.token_urlsafe(24))
        sidecars.append(s)
        return s
    return start


def app_environment(federation, monkeypatch, **variables: str) -> None:
    """The app container's environment: none of the workload identity variables (the app
    only knows managed identity), Keyless' CA for the vault's TLS, and `variables`."""
    for var in SOURCE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", federation.server.admin.ca_file)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def vault_with_secret(federation, identity) -> tuple[str, str, str]:
    """A vault, a secret in it, and the identity allowed to read it: (vault uri, name, value)."""
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets User", identity.principal_id, vault.id)
    name, value = "db-password", f"s3cret-{uuid.uuid4().hex[:8]}"
    federation.admin_secret_client(vault).set_secret(name, value)
    return vault.uri, name, value


def test_managed_identity_credential_reads_a_secret_through_app_service(
        federation, vault_hosts, start_sidecar, monkeypatch):
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)
    app_environment(federation, monkeypatch, IDENTITY_ENDPOINT=sidecar.identity_endpoint,
                    IDENTITY_HEADER=sidecar.identity_header)

    assert SecretClient(uri, ManagedIdentityCredential()).get_secret(name).value == value
    # Naming its own identity (any letter case) works too.
    cred = ManagedIdentityCredential(client_id=identity.client_id.upper())
    token = cred.get_token(federation.resource_manager_scope)
    _, claims = federation.decode(token.token)
    assert claims["oid"] == identity.principal_id, claims
    assert claims["appid"] == identity.client_id, claims
    assert abs(token.expires_on - claims["exp"]) <= 5, (token.expires_on, claims["exp"])
    cred = ManagedIdentityCredential(identity_config={"object_id": identity.principal_id})
    assert federation.decode(cred.get_token(federation.vault_scope).token)[1]["oid"] == identity.principal_id


def test_default_azure_credential_reads_a_secret_through_app_service(
        federation, vault_hosts, start_sidecar, monkeypatch):
    """DefaultAzureCredential passes AZURE_CLIENT_ID to its managed identity credential,
    which sends it as client_id."""
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)
    app_environment(federation, monkeypatch, IDENTITY_ENDPOINT=sidecar.identity_endpoint,
                    IDENTITY_HEADER=sidecar.identity_header, AZURE_CLIENT_ID=identity.client_id)

    cred = DefaultAzureCredential(exclude_cli_credential=True, exclude_developer_cli_credential=True,
                                  exclude_powershell_credential=True)
    assert SecretClient(uri, cred).get_secret(name).value == value


def test_managed_identity_and_default_credential_through_the_imds_path(
        federation, vault_hosts, start_sidecar, monkeypatch):
    identity = federation.create_identity()
    uri, name, value = vault_with_secret(federation, identity)
    sidecar = start_sidecar(identity)
    app_environment(federation, monkeypatch, AZURE_POD_IDENTITY_AUTHORITY_HOST=sidecar.url)

    assert SecretClient(uri, ManagedIdentityCredential()).get_secret(name).value == value
    cred = ManagedIdentityCredential(identity_config={"msi_res_id": identity.id})
    # azure-identity maps a resource id to msi_res_id on IMDS; the token is its own identity's.
    _, claims = federation.decode(cred.get_token(federation.resource_manager_scope).token)
    assert claims["xms_mirid"].lower() == identity.id.lower(), claims

    # In DefaultAzureCredential's chain the IMDS credential probes first (the query without
    # the Metadata header): the sidecar's prompt 400 tells it an endpoint is there.
    monkeypatch.setenv("AZURE_CLIENT_ID", identity.client_id)
    cred = DefaultAzureCredential(exclude_cli_credential=True, exclude_developer_cli_credential=True,
                                  exclude_powershell_credential=True)
    assert SecretClient(uri, cred).get_secret(name).value == value


def test_refusals_reach_the_app_with_their_reason(federation, start_sidecar, monkeypatch):
    identity = federation.create_identity()
    other = federation.create_identity()
    sidecar = start_sidecar(identity)
    scope = federation.resource_manager_scope
    resource = federation.resource_manager

    # IMDS without the Metadata header: IMDS' 400, at once.
    started = time.monotonic()
    r = requests.get(f"{sidecar.url}/metadata/identity/oauth2/token",
                     params={"api-version": "2018-02-01", "resource": resource}, timeout=5)
    assert time.monotonic() - started < 1
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_request", r.text
    assert r.json()["error_description"] == "Required metadata header not specified", r.text

    # A wrong X-IDENTITY-HEADER: refused, and the SDK's message says why.
    app_environment(federation, monkeypatch, IDENTITY_ENDPOINT=sidecar.identity_endpoint,
                    IDENTITY_HEADER="not-the-secret")
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as excinfo:
        ManagedIdentityCredential().get_token(scope)
    assert "X-IDENTITY-HEADER" in str(excinfo.value), str(excinfo.value)

    # Another identity's client id, on both paths.
    monkeypatch.setenv("IDENTITY_HEADER", sidecar.identity_header)
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as excinfo:
        ManagedIdentityCredential(client_id=other.client_id).get_token(scope)
    assert "Identity not found" in str(excinfo.value), str(excinfo.value)
    app_environment(federation, monkeypatch, AZURE_POD_IDENTITY_AUTHORITY_HOST=sidecar.url)
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as excinfo:
        ManagedIdentityCredential(client_id=other.client_id).get_token(scope)
    assert "Identity not found" in str(excinfo.value), str(excinfo.value)
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as excinfo:
        ManagedIdentityCredential(identity_config={"object_id": other.principal_id}).get_token(scope)
    assert "Identity not found" in str(excinfo.value), str(excinfo.value)


class StaticIssuer:
    """A token issuer Keyless trusts through a registered JWKS (`keyless issuer register`),
    so a test can sign projected tokens that have already expired."""

    def __init__(self, federation, tmp_path: Path):
        self.issuer = f"https://issuer.{uuid.uuid4().hex[:8]}.imds-test.example"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        jwks = {"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
                          "n": b64(numbers.n), "e": b64(numbers.e)}]}
        path = tmp_path / "jwks.json"
        path.write_text(json.dumps(jwks))
        federation.server.cli("issuer", "register", "--name", f"imds-{uuid.uuid4().hex[:8]}",
                              "--issuer", self.issuer, "--jwks-file", str(path))

    def token(self, subject: str, expired: bool) -> str:
        now = int(time.time())
        start = now - 7200 if expired else now - 5
        claims = {"iss": self.issuer, "sub": subject, "aud": ["api://AzureADTokenExchange"],
                  "iat": start, "nbf": start, "exp": start + 3600}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "k1"})


def test_an_expired_projected_token_is_reported_then_the_rotated_one_used(
        federation, start_sidecar, monkeypatch, tmp_path):
    issuer = StaticIssuer(federation, tmp_path)
    subject = "system:serviceaccount:apps:legacy"
    identity = federation.create_identity()
    federation.server.cli_json(
        "identity", "federated-credential", "create", "--name", "static",
        "--identity-name", identity.name, "--resource-group", identity.resource_group,
        "--issuer", issuer.issuer, "--subject", subject,
    )
    token_file = tmp_path / "token"
    token_file.write_text(issuer.token(subject, expired=True))
    # The sidecar starts anyway: the kubelet rotates the file.
    sidecar = start_sidecar(identity, token_file)
    app_environment(federation, monkeypatch, IDENTITY_ENDPOINT=sidecar.identity_endpoint,
                    IDENTITY_HEADER=sidecar.identity_header)

    started = time.monotonic()
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)) as excinfo:
        ManagedIdentityCredential().get_token(federation.resource_manager_scope)
    assert "AADSTS700024" in str(excinfo.value), str(excinfo.value)
    # A 4xx: the SDK did not spend its retries on it.
    assert time.monotonic() - started < 5

    tmp = tmp_path / ".token.tmp"
    tmp.write_text(issuer.token(subject, expired=False))
    tmp.rename(token_file)
    time.sleep(1.2)  # the sidecar remembers a failure for 1 s (--failure-cache-seconds)
    token = ManagedIdentityCredential().get_token(federation.resource_manager_scope)
    assert federation.decode(token.token)[1]["oid"] == identity.principal_id
