"""Issue 4, "Done means", Rust half: the real, unmodified Rust Key Vault SDK
(`azure_security_keyvault_secrets::SecretClient` from crates.io) with `azure_identity`'s
`WorkloadIdentityCredential`, against a Keyless vault.

The Rust side is the `rust-azure-sdk-keyvault` binary of interop/rust-azure-sdk (built by
`./scripts/test.sh build`). It keeps one `SecretClient` for its whole life and runs the JSON
commands it reads on stdin, one JSON answer per line, so a test can change role assignments
between two calls of the same client. The vault host resolves to 127.0.0.1 through
`--resolve-to 127.0.0.1`: the binary hands the SDK a reqwest client with that one host
pinned as its transport (azure_core `ClientOptions::transport`); see src/keyvault.rs.
Binary: `$KEYLESS_RUST_SDK_KEYVAULT_BIN`, else
interop/rust-azure-sdk/target/debug/rust-azure-sdk-keyvault.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
from pathlib import Path
from typing import Optional

import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = REPO_ROOT / "interop" / "rust-azure-sdk"
# The SDK retries transient failures with backoff; a hung call must still fail the test.
CALL_TIMEOUT_S = 90
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
SET_SECRET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
VERSION_RE = re.compile(r"^[0-9a-f]{32}$")


def rust_keyvault_bin() -> Path:
    env = os.environ.get("KEYLESS_RUST_SDK_KEYVAULT_BIN")
    path = Path(env) if env else PROJECT / "target" / "debug" / "rust-azure-sdk-keyvault"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"Rust Key Vault SDK interop binary not found or not executable: {path}\n"
            f"Build it with `cargo build --manifest-path {PROJECT / 'Cargo.toml'}` "
            "(./scripts/test.sh does), or set KEYLESS_RUST_SDK_KEYVAULT_BIN.",
            pytrace=False,
        )
    return path


class RustSecretClient:
    """One running `rust-azure-sdk-keyvault VAULT_URL --resolve-to 127.0.0.1`: one SDK
    `SecretClient` with `WorkloadIdentityCredential`, configured by this process'
    environment at start (the test sets it with `federation.use`)."""

    def __init__(self, vault_url: str):
        self.cmd = [str(rust_keyvault_bin()), vault_url, "--resolve-to", "127.0.0.1"]
        self.proc = subprocess.Popen(
            self.cmd, env=dict(os.environ), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
        )
        self._answers: "queue.Queue[Optional[str]]" = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line)

    def _fail(self, why: str) -> None:
        pytest.fail(f"{why}\ncommand: {' '.join(self.cmd)}\n--- stderr ---\n{''.join(self._stderr)}", pytrace=False)

    def call(self, op: str, **args) -> dict:
        """Sends one command; returns the answer: {"ok": True, "result": ...} or
        {"ok": False, "error": {"kind", "status", "code", "body", "message"}}."""
        line = json.dumps({"op": op, **args})
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._fail(f"the binary exited (code {self.proc.poll()}) before {line}")
        try:
            answer = self._answers.get(timeout=CALL_TIMEOUT_S)
        except queue.Empty:
            self._fail(f"no answer to {line} within {CALL_TIMEOUT_S} s")
        if answer is None:
            self.proc.wait(timeout=5)
            self._fail(f"the binary exited with {self.proc.returncode} without answering {line}")
        return json.loads(answer)

    def ok(self, op: str, **args):
        out = self.call(op, **args)
        assert out["ok"] is True, f"{op} {args}: {out}\n--- stderr ---\n{''.join(self._stderr)}"
        return out["result"]

    def error(self, op: str, **args) -> dict:
        out = self.call(op, **args)
        assert out["ok"] is False, f"{op} {args} succeeded, expected an error: {out}"
        return out["error"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._fail("the binary did not exit within 10 s of EOF on stdin")
            assert code == 0, f"exit code {code}\n--- stderr ---\n{''.join(self._stderr)}"


@pytest.fixture
def rust_clients():
    """Starts RustSecretClients for a test and closes them (exit 0 on EOF) at its end."""
    clients: list[RustSecretClient] = []

    def start(vault_url: str) -> RustSecretClient:
        c = RustSecretClient(vault_url)
        clients.append(c)
        return c

    yield start
    for c in clients:
        c.close()


def assert_forbidden_by_rbac(err: dict, identity, action: str, scope: str) -> None:
    assert err["kind"] == "HttpResponse", err
    assert err["status"] == 403, err
    # azure_core 1.1's check_success takes the code from `x-ms-error-code`, else from the
    # body's `error.code` parsed into *borrowed* &str fields, which fails for a JSON string
    # with escapes; Key Vault's ForbiddenByRbac message has `\r\n` in it (so does Azure's),
    # so the SDK falls back to the status as the code and puts the raw body in the message.
    assert err["code"] in ("Forbidden", "403"), err
    assert "ForbiddenByRbac" in err["message"], err
    body = err["body"]["error"]
    assert body["code"] == "Forbidden", err
    assert body["innererror"]["code"] == "ForbiddenByRbac", err
    assert f"appid={identity.client_id}" in body["message"], err
    assert f"oid={identity.principal_id}" in body["message"], err
    assert f"Action: '{action}'" in body["message"], err
    assert f"Resource: '{scope.lower()}'" in body["message"], err


def test_rust_workload_gets_403_without_role_then_succeeds_after_assignment(federation, vault_hosts, rust_clients):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    stored = federation.admin_secret_client(vault).set_secret("db-password", "from-python")

    federation.use(identity)
    client = rust_clients(vault.uri)
    err = client.error("get", name="db-password")
    assert_forbidden_by_rbac(err, identity, GET_SECRET, f"{vault.id}/secrets/db-password")

    # The next call of the same client (same cached token) succeeds once the role exists.
    federation.grant("Key Vault Secrets User", identity.principal_id, vault.id)
    got = client.ok("get", name="db-password")
    assert got["value"] == "from-python"
    assert got["name"] == "db-password"
    assert got["version"] == stored.properties.version
    assert got["id"] == f"{vault.uri}secrets/db-password/{stored.properties.version}"
    assert got["attributes"]["enabled"] is True
    assert got["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
    # Secrets User cannot write.
    err = client.error("set", name="db-password", value="x")
    assert_forbidden_by_rbac(err, identity, SET_SECRET, f"{vault.id}/secrets/db-password")


def test_rust_set_get_list_versions_update_delete_recover_purge(federation, vault_hosts, rust_clients):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    federation.use(identity)
    client = rust_clients(vault.uri)

    # set (the first request carries a body: the SDK sends it body-less for the challenge)
    v1 = client.ok("set", name="app-config", value="one", contentType="text/plain", tags={"env": "test"})
    assert VERSION_RE.match(v1["version"]), v1
    assert v1["value"] == "one" and v1["contentType"] == "text/plain" and v1["tags"] == {"env": "test"}
    assert v1["id"] == f"{vault.uri}secrets/app-config/{v1['version']}"
    assert isinstance(v1["attributes"]["created"], int), v1
    v2 = client.ok("set", name="app-config", value="two")
    assert v2["version"] != v1["version"]

    # get: latest and by version
    assert client.ok("get", name="app-config")["value"] == "two"
    assert client.ok("get", name="app-config", version=v1["version"])["value"] == "one"

    # list and versions
    client.ok("set", name="other", value="x")
    pages = client.ok("list")["pages"]
    assert sorted(i["name"] for p in pages for i in p) == ["app-config", "other"], pages
    assert all(i["version"] is None for p in pages for i in p), pages
    pages = client.ok("versions", name="app-config")["pages"]
    assert sorted(i["version"] for p in pages for i in p) == sorted([v1["version"], v2["version"]]), pages

    # update: disable the latest; get is refused (403 SecretDisabled); enable again
    upd = client.ok("update", name="app-config", version=v2["version"], enabled=False)
    assert upd["attributes"]["enabled"] is False and upd["version"] == v2["version"]
    err = client.error("get", name="app-config")
    assert err["status"] == 403 and err["body"]["error"]["innererror"]["code"] == "SecretDisabled", err
    assert client.ok("update", name="app-config", enabled=True)["attributes"]["enabled"] is True

    # delete, deleted get, name held (409), recover, delete + purge
    d = client.ok("delete", name="app-config")
    assert d["recoveryId"] == f"{vault.uri}deletedsecrets/app-config", d
    assert d["scheduledPurgeDate"] - d["deletedDate"] == 90 * 86400, d
    err = client.error("get", name="app-config")
    assert err["status"] == 404 and err["code"] == "SecretNotFound", err
    err = client.error("set", name="app-config", value="three")
    assert err["status"] == 409, err
    assert err["body"]["error"]["innererror"]["code"] == "ObjectIsDeletedButRecoverable", err
    assert client.ok("get_deleted", name="app-config")["version"] == v2["version"]
    rec = client.ok("recover", name="app-config")
    assert rec["name"] == "app-config" and rec["version"] == v2["version"]
    assert client.ok("get", name="app-config")["value"] == "two"
    client.ok("delete", name="app-config")
    assert client.ok("purge", name="app-config") == {}
    err = client.error("get_deleted", name="app-config")
    assert err["status"] == 404, err
    assert client.ok("set", name="app-config", value="fresh")["value"] == "fresh"


def test_rust_lists_follow_next_link(federation, vault_hosts, rust_clients):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    # Python (the admin) fills the vault; Rust (the workload) pages through it.
    admin = federation.admin_secret_client(vault)
    names = [f"s{i:02d}" for i in range(30)]
    for n in names:
        admin.set_secret(n, n)
    for i in range(27):
        admin.set_secret("rotated", f"v{i}")

    federation.use(identity)
    client = rust_clients(vault.uri)
    pages = client.ok("list")["pages"]
    assert [len(p) for p in pages] == [25, 6], [len(p) for p in pages]
    assert sorted(i["name"] for p in pages for i in p) == sorted(names + ["rotated"])
    pages = client.ok("list", maxresults=10)["pages"]
    assert [len(p) for p in pages] == [10, 10, 10, 1], [len(p) for p in pages]
    pages = client.ok("versions", name="rotated")["pages"]
    assert [len(p) for p in pages] == [25, 2], [len(p) for p in pages]
    assert len({i["version"] for p in pages for i in p}) == 27


def test_rust_missing_secret_is_404_secret_not_found(federation, vault_hosts, rust_clients):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets User", identity.principal_id, vault.id)
    federation.use(identity)
    client = rust_clients(vault.uri)
    err = client.error("get", name="does-not-exist")
    assert err["kind"] == "HttpResponse" and err["status"] == 404, err
    assert err["code"] == "SecretNotFound", err
