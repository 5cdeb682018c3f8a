"""Issue 14: the real Azure CLI (`azure-cli` from PyPI, pinned in azure-cli-requirements.txt,
installed by scripts/test.sh into a cached venv and found through KEYLESS_AZ_CLI) against
`keyless serve`, set up exactly as `keyless az-config` prints and the README's "Azure CLI"
section says: trust ca.pem (REQUESTS_CA_BUNDLE), `az cloud register` with nothing but the
resource manager URL (the rest comes from /metadata/endpoints), instance discovery off.
Then the seed operator's commands, unchanged: `az login --service-principal` with a secret
and with `--federated-token` (no --allow-no-subscriptions), `az account show`,
`az account get-access-token --resource`, `az keyvault secret set/show`.

Every test has its own AZURE_CONFIG_DIR and HOME. Vault hosts (`{vault}.vault.localhost`)
do not resolve on every machine, and tests must not edit /etc/hosts: az runs with a
`sitecustomize` on PYTHONPATH that answers 127.0.0.1 for `*.localhost` names (RFC 6761
reserves them for loopback), inside the az process only."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Optional

import pytest

from conftest import KeylessServer, Vault, jwt_parts

AZ_TIMEOUT_S = 120

# Loaded by the az process at start-up (PYTHONPATH): `*.localhost` → 127.0.0.1, where every
# test server listens. Everything else az does (URLs, Host, SNI, certificate checks) is
# unchanged.
SITECUSTOMIZE = '''
import socket

_real_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host, port, *args, **kwargs):
    name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
        return _real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
    return _real_getaddrinfo(host, port, *args, **kwargs)


socket.getaddrinfo = _getaddrinfo
'''


def az_binary() -> str:
    path = os.environ.get("KEYLESS_AZ_CLI")
    if path and os.access(path, os.X_OK):
        return path
    reason = os.environ.get("KEYLESS_AZ_CLI_UNAVAILABLE")
    if reason:
        pytest.skip(reason)
    pytest.skip(
        "the Azure CLI venv is set up by ./scripts/test.sh python (KEYLESS_AZ_CLI is not set)"
    )


class Az:
    """The az command line in a private config directory, trusting one Keyless CA."""

    def __init__(self, binary: str, home: Path, ca_file: str):
        self.binary = binary
        self.config_dir = home / "azure"
        site = home / "site"
        site.mkdir(parents=True)
        (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
        # A clean environment: nothing of the developer's az set-up or Azure variables.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "AZURE_CONFIG_DIR": str(self.config_dir),
            "REQUESTS_CA_BUNDLE": ca_file,
            "PYTHONPATH": str(site),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
        }

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        argv = [self.binary, *args]
        try:
            done = subprocess.run(
                argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                errors="replace", timeout=AZ_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`az {' '.join(args)}` did not finish within {AZ_TIMEOUT_S} s", pytrace=False)
        if ok and done.returncode != 0:
            pytest.fail(
                f"`az {' '.join(args)}` exited with {done.returncode}\n"
                f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}",
                pytrace=False,
            )
        return done

    def json(self, *args: str):
        return json.loads(self.run(*args, "-o", "json").stdout)

    def fails(self, *args: str) -> str:
        """Runs a command that must fail; returns its stderr."""
        done = self.run(*args, ok=False)
        assert done.returncode != 0, f"`az {' '.join(args)}` succeeded: {done.stdout}"
        return done.stderr


@pytest.fixture
def az_factory(tmp_path):
    binary = az_binary()
    made = 0

    def make(server: KeylessServer) -> Az:
        nonlocal made
        made += 1
        return Az(binary, tmp_path / f"az-{made}", server.admin.ca_file)

    return make


def set_up(az: Az, server: KeylessServer) -> dict:
    """The set-up `keyless az-config` prints for this server, run command by command."""
    config = json.loads(server.cli("az-config", "--output", "json"))
    assert config["environment"] == {"REQUESTS_CA_BUNDLE": server.admin.ca_file}, config
    assert [c[:3] for c in config["setup"]] == [
        ["az", "cloud", "register"], ["az", "cloud", "set"], ["az", "config", "set"],
    ], config
    for argv in config["setup"]:
        az.run(*argv[1:])
    return config


def create_vault(server: KeylessServer, resource_group: str) -> Vault:
    name = f"kv{uuid.uuid4().hex[:12]}"
    out = server.cli_json("keyvault", "create", "--name", name, "--resource-group", resource_group)
    return Vault(name=name, id=out["id"], uri=out["properties"]["vaultUri"])


def login_secret(az: Az, server: KeylessServer) -> list:
    a = server.admin
    # `--password=...`: a secret may start with '-', which az would read as an option.
    return az.json("login", "--service-principal", "-u", a.client_id, f"--password={a.client_secret}",
                   "-t", a.tenant_id)


def login_federated(az: Az, client_id: str, tenant_id: str, token: str, ok: bool = True):
    args = ("login", "--service-principal", "-u", client_id, "-t", tenant_id, "--federated-token", token)
    if ok:
        return az.json(*args)
    return az.fails(*args)


def test_cloud_register_autodetects_every_endpoint_from_the_resource_manager_url(server, az_factory):
    az = az_factory(server)
    rm = server.admin.resource_manager_url
    # Nothing but the resource manager URL: az fetches /metadata/endpoints for the rest.
    az.run("cloud", "register", "-n", "keyless", "--endpoint-resource-manager", rm)
    cloud = az.json("cloud", "show", "-n", "keyless")
    host_port = rm.removeprefix("https://").rstrip("/")
    assert cloud["endpoints"]["resourceManager"] == rm, cloud
    assert cloud["endpoints"]["activeDirectory"] == rm, cloud
    assert cloud["endpoints"]["activeDirectoryResourceId"] == rm, cloud
    assert cloud["endpoints"]["management"] == rm, cloud
    assert cloud["suffixes"]["keyvaultDns"] == f".vault.{host_port}", cloud
    # The printed set-up registers the same cloud.
    az2 = az_factory(server)
    config = set_up(az2, server)
    assert config["resourceManager"] == rm, config
    assert az2.json("cloud", "show", "-n", "keyless")["endpoints"] == cloud["endpoints"]
    assert az2.json("cloud", "show")["name"] == "keyless"


def test_service_principal_secret_login_token_and_secrets(server, az_factory):
    a = server.admin
    az = az_factory(server)
    set_up(az, server)
    subs = login_secret(az, server)
    assert [s["id"] for s in subs] == [a.subscription_id], subs
    assert subs[0]["user"] == {"name": a.client_id, "type": "servicePrincipal"}, subs

    account = az.json("account", "show")
    assert account["id"] == a.subscription_id, account
    assert account["tenantId"] == a.tenant_id, account
    assert account["environmentName"] == "keyless", account
    assert account["state"] == "Enabled", account

    # The resource manager token (az's default resource) and the vault token.
    token = az.json("account", "get-access-token")
    _, claims = jwt_parts(token["accessToken"])
    assert claims["aud"] == a.resource_manager_url, claims
    assert claims["appid"] == a.client_id, claims
    assert token["tenant"] == a.tenant_id and token["subscription"] == a.subscription_id, token
    host_port = a.resource_manager_url.removeprefix("https://").rstrip("/")
    vault_resource = f"https://vault.{host_port}"
    token = az.json("account", "get-access-token", "--resource", vault_resource)
    _, claims = jwt_parts(token["accessToken"])
    assert claims["aud"] == vault_resource, claims

    # The admin holds Key Vault Administrator on the subscription.
    rg = f"az-rg-{uuid.uuid4().hex[:8]}"
    server.cli_json("group", "create", "--name", rg, "--location", "westeurope")
    vault = create_vault(server, rg)
    out = az.json("keyvault", "secret", "set", "--vault-name", vault.name, "-n", "db-password", "--value", "s3cr3t!")
    assert out["value"] == "s3cr3t!", out
    assert out["id"].startswith(f"{vault.uri}secrets/db-password/"), out
    value = az.run("keyvault", "secret", "show", "--vault-name", vault.name, "-n", "db-password",
                   "--query", "value", "-o", "tsv").stdout.strip()
    assert value == "s3cr3t!"


def test_federated_token_login_with_only_a_vault_role(federation, az_factory):
    """The seed's workload: Key Vault Secrets User on one vault and nothing else. `az login
    --federated-token` without --allow-no-subscriptions finds the vault's subscription; the
    secret is readable; writing it, or reading another vault, is 403."""
    server = federation.server
    az = az_factory(server)
    set_up(az, server)
    identity = federation.create_identity()
    vault = create_vault(server, identity.resource_group)
    other = create_vault(server, identity.resource_group)
    federation.grant("Key Vault Secrets User", identity.principal_id, vault.id)
    for v in (vault, other):
        server.cli("keyvault", "secret", "set", "--vault-name", v.name, "--name", "api-key", "--value", "v1")

    token = federation.cluster.token_file.read_text().strip()
    subs = login_federated(az, identity.client_id, identity.tenant_id, token)
    assert [s["id"] for s in subs] == [server.admin.subscription_id], subs
    assert subs[0]["user"] == {"name": identity.client_id, "type": "servicePrincipal"}, subs
    account = az.json("account", "show")
    assert account["id"] == server.admin.subscription_id, account
    assert account["user"]["name"] == identity.client_id, account

    token = az.json("account", "get-access-token", "--resource", federation.vault_resource)
    header, claims = jwt_parts(token["accessToken"])
    federation.check_access_token(header, claims, identity, federation.vault_resource)

    value = az.run("keyvault", "secret", "show", "--vault-name", vault.name, "-n", "api-key",
                   "--query", "value", "-o", "tsv").stdout.strip()
    assert value == "v1"

    # No role grants writing, nor the other vault: 403 Forbidden, named as such.
    for args in (
        ("keyvault", "secret", "set", "--vault-name", vault.name, "-n", "api-key", "--value", "v2"),
        ("keyvault", "secret", "show", "--vault-name", other.name, "-n", "api-key"),
    ):
        err = az.fails(*args)
        assert "Forbidden" in err, err
        assert identity.principal_id in err, err
    # Seeing the subscription granted nothing in it: its groups (the identity's own is
    # there) are not listed to this identity.
    assert az.json("group", "list") == []
    assert any(g["name"] == identity.resource_group for g in server.cli_json("group", "list"))


def test_untrusted_subject_gets_a_readable_aadsts_error(federation, az_factory):
    server = federation.server
    az = az_factory(server)
    set_up(az, server)
    # A federated credential for another service account than the token's.
    identity = federation.create_identity(subject="system:serviceaccount:other:not-the-workload")
    token = federation.cluster.token_file.read_text().strip()
    err = login_federated(az, identity.client_id, identity.tenant_id, token, ok=False)
    assert "AADSTS700213" in err, err
    assert federation.cluster.subject in err, err
    # az says what went wrong, not a stack trace.
    assert "Traceback" not in err, err
