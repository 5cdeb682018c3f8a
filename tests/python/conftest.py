"""Fixtures that run the real `keyless serve` binary for the Python SDK interop tests.

The server is started exactly as a user would start it (`keyless serve` on loopback, a
fresh data dir, port 0 so tests never collide), and everything the tests need to talk to
it comes from the `{data-dir}/admin.json` it writes on first start.

For workload identity, `keyless dev-cluster` stands in for a Kubernetes cluster's
service-account issuer and writes the projected token file; `federation` gives a test a
server that trusts it, identities to exchange the token for, and the environment variables
the SDKs read.

Binary: `$KEYLESS_BIN`, else `<repo>/target/debug/keyless` (what `cargo build` makes).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# The server prints e.g. `keyless serve: ready at https://localhost:43123` once it
# accepts connections. Stop at whitespace or a quote, in case the line is ever wrapped
# in a JSON log record.
READY_RE = re.compile(r"ready at (https?://[^\s\"']+)")
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10
# Every HTTP call in these tests has a timeout: a hung server must fail a test, not CI.
HTTP_TIMEOUT_S = 30


@dataclass(frozen=True)
class Admin:
    """`{data-dir}/admin.json`: the bootstrap admin service principal."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    authority_host: str  # https://HOST:PORT
    resource_manager_url: str  # https://HOST:PORT/
    ca_file: str  # PEM of the CA that signed the server's certificate

    @classmethod
    def load(cls, path: Path) -> "Admin":
        raw = json.loads(path.read_text())
        return cls(
            tenant_id=raw["tenantId"],
            subscription_id=raw["subscriptionId"],
            client_id=raw["clientId"],
            client_secret=raw["clientSecret"],
            authority_host=raw["authorityHost"],
            resource_manager_url=raw["resourceManagerUrl"],
            ca_file=raw["caFile"],
        )


def keyless_bin() -> Path:
    env = os.environ.get("KEYLESS_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "keyless"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"keyless binary not found or not executable: {path}\n"
            "Build it with `cargo build` (or run ./scripts/test.sh), or set KEYLESS_BIN.",
            pytrace=False,
        )
    return path


class KeylessProcess:
    """One running `keyless` subcommand that prints `ready at https://...` on stdout once it
    serves (`keyless serve`, `keyless dev-cluster`). `url` is that URL."""

    what = "keyless"  # names the process in failure messages

    # --- process plumbing -------------------------------------------------------------

    def _start(self, cmd: list[str], env: Optional[dict[str, str]] = None) -> None:
        self.cmd = cmd
        self._lines: list[str] = []  # stdout and stderr, interleaved, as received
        self._lock = threading.Lock()
        self._stdout_lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
            env=env,
        )
        # Drain both pipes for the whole life of the process: a server that logs a lot
        # would otherwise block on a full pipe and look hung.
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, "out", True), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, "err", False), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.url = self._wait_ready()

    def _drain(self, pipe, tag: str, to_queue: bool) -> None:
        for line in pipe:
            line = line.rstrip("\n")
            with self._lock:
                self._lines.append(f"[{tag}] {line}")
            if to_queue:
                self._stdout_lines.put(line)
        if to_queue:
            self._stdout_lines.put(None)  # EOF

    def output(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def _fail(self, why: str) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=2)
        pytest.fail(
            f"{why}\ncommand: {' '.join(self.cmd)}\nexit code: {self.proc.returncode}\n"
            f"--- {self.what} output ---\n{self.output()}",
            pytrace=False,
        )

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"{self.what} did not print 'ready at https://...' within {READY_TIMEOUT_S} s")
            try:
                line = self._stdout_lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail(f"{self.what} closed stdout (exited?) before printing its ready line")
            m = READY_RE.search(line)
            if m:
                return m.group(1).rstrip("/")

    def stop(self) -> int:
        """SIGTERM, wait for a graceful exit; kill if it takes too long. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                for t in self._threads:
                    t.join(timeout=2)
                pytest.fail(
                    f"{self.what} did not exit within {STOP_TIMEOUT_S} s of SIGTERM; killed\n"
                    f"--- {self.what} output ---\n{self.output()}",
                    pytrace=False,
                )
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode

    def stop_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, (
            f"{self.what} exited with {code} after SIGTERM\n--- {self.what} output ---\n{self.output()}"
        )


class KeylessServer(KeylessProcess):
    """One running `keyless serve` process."""

    what = "server"

    def __init__(self, binary: Path, data_dir: Path, listen: str, extra_args: tuple[str, ...]):
        self.binary = binary
        self.data_dir = data_dir
        self._start([
            str(binary), "serve",
            "--data-dir", str(data_dir),
            "--listen", listen,
            "--log-format", "json",
            *extra_args,
        ])
        admin_path = data_dir / "admin.json"
        if not admin_path.is_file():
            self._fail(f"server is ready but {admin_path} does not exist")
        self.admin = Admin.load(admin_path)

    # --- client helpers ---------------------------------------------------------------

    def trust_ca(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the SDKs trust this server's CA the way a user would: azure-core's requests
        transport (which also carries MSAL's traffic in azure-identity) honours
        REQUESTS_CA_BUNDLE; SSL_CERT_FILE is what the Rust SDK and OpenSSL-based tools read."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", self.admin.ca_file)
        monkeypatch.setenv("SSL_CERT_FILE", self.admin.ca_file)

    def credential(self, client_secret: Optional[str] = None, admin: Optional[Admin] = None):
        """The real, unmodified azure-identity ClientSecretCredential, pointed at this server."""
        from azure.identity import ClientSecretCredential

        a = admin or self.admin
        return ClientSecretCredential(
            a.tenant_id,
            a.client_id,
            client_secret if client_secret is not None else a.client_secret,
            authority=self.admin.authority_host,
            disable_instance_discovery=True,
        )

    def management_token(self, admin: Optional[Admin] = None) -> str:
        with self.credential(admin=admin) as cred:
            return cred.get_token(self.admin.resource_manager_url + ".default").token

    def arm(self, token: Optional[str]) -> "Arm":
        return Arm(self, token)

    def cli(self, *args: str) -> str:
        """Run the `keyless` CLI against this server as its admin (`KEYLESS_ADMIN_FILE`) and
        return its stdout; a non-zero exit fails the test with the CLI's output."""
        env = dict(os.environ, KEYLESS_ADMIN_FILE=str(self.data_dir / "admin.json"))
        cmd = [str(self.binary), *args]
        try:
            done = subprocess.run(
                cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                errors="replace", timeout=HTTP_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"`keyless {' '.join(args)}` did not finish within {HTTP_TIMEOUT_S} s", pytrace=False)
        if done.returncode != 0:
            pytest.fail(
                f"`keyless {' '.join(args)}` exited with {done.returncode}\n"
                f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}",
                pytrace=False,
            )
        return done.stdout

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args, "-o", "json"))


class Arm:
    """Plain HTTPS calls to the ARM-compatible management API (what `az rest` would do)."""

    def __init__(self, server: KeylessServer, token: Optional[str]):
        self.server = server
        self.base = server.admin.resource_manager_url
        self.session = requests.Session()
        self.session.verify = server.admin.ca_file
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def request(self, method: str, path: str, api_version: Optional[str], json_body=None) -> requests.Response:
        params = {"api-version": api_version} if api_version else None
        return self.session.request(
            method, self.url(path), params=params, json=json_body, timeout=HTTP_TIMEOUT_S,
            verify=self.server.admin.ca_file,
        )

    def put(self, path: str, body, api_version: str) -> requests.Response:
        return self.request("PUT", path, api_version, body)

    def get(self, path: str, api_version: str) -> requests.Response:
        return self.request("GET", path, api_version)

    def delete(self, path: str, api_version: str) -> requests.Response:
        return self.request("DELETE", path, api_version)


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Decode a JWT's header and payload without verifying it (the server verifies; we look)."""
    parts = token.split(".")
    assert len(parts) == 3, f"not a compact JWS: {token[:40]}..."

    def b64json(part: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))

    return b64json(parts[0]), b64json(parts[1])


class DevCluster(KeylessProcess):
    """One running `keyless dev-cluster`: a stand-in Kubernetes service-account issuer that
    writes a projected token file, as the kubelet does for a pod with workload identity."""

    what = "dev-cluster"

    def __init__(self, binary: Path, data_dir: Path, token_file: Path, namespace: str,
                 service_account: str, extra_args: tuple[str, ...] = ()):
        self.data_dir = data_dir
        self.token_file = token_file
        self.namespace = namespace
        self.service_account = service_account
        self.subject = f"system:serviceaccount:{namespace}:{service_account}"
        self._start([
            str(binary), "dev-cluster",
            "--data-dir", str(data_dir),
            "--listen", "127.0.0.1:0",
            "--token-file", str(token_file),
            "--namespace", namespace,
            "--service-account", service_account,
            "--log-format", "json",
            *extra_args,
        ])
        # The CA that signed the issuer's certificate: Keyless must trust it to fetch the
        # discovery document and JWKS (`keyless serve --trust-ca`).
        self.ca_file = data_dir / "ca.pem"
        if not self.ca_file.is_file():
            self._fail(f"dev-cluster is ready but {self.ca_file} does not exist")
        if not token_file.is_file():
            self._fail(f"dev-cluster is ready but did not write the token file {token_file}")
        # A federated credential's issuer must equal the token's `iss` exactly, so take it
        # from the token rather than from the ready line.
        _, claims = jwt_parts(token_file.read_text().strip())
        self.issuer: str = claims["iss"]
        if self.issuer.rstrip("/") != self.url:
            self._fail(f"token file iss {self.issuer!r} is not the issuer URL {self.url!r}")
        if claims.get("sub") != self.subject:
            self._fail(f"token file sub {claims.get('sub')!r}, expected {self.subject!r}")


@dataclass(frozen=True)
class WorkloadIdentity:
    """A user-assigned identity with one federated credential, as the server returned them."""

    name: str
    resource_group: str
    id: str  # the identity's resource id (the `xms_mirid` claim)
    tenant_id: str
    client_id: str
    principal_id: str
    issuer: str  # of its federated credential
    subject: str  # of its federated credential


@dataclass(frozen=True)
class Vault:
    """A vault as `keyless keyvault create` returned it."""

    name: str
    id: str  # ARM resource id: the scope of role assignments
    uri: str  # properties.vaultUri: https://{name}.vault.HOST:PORT/


# Access tokens minted with `keyless serve`'s default --token-lifetime.
DEFAULT_TOKEN_LIFETIME_S = 3600
# Clock skew tolerated between this process and the server (same machine: small).
CLOCK_SKEW_S = 60


class Federation:
    """A `keyless serve` that trusts a `keyless dev-cluster` issuer, as seen by one test:
    creates identities whose federated credential matches (or, on purpose, does not match)
    the cluster's token file, and points the Azure SDKs' workload identity environment
    variables at them the way the AKS workload identity webhook does in a pod."""

    def __init__(self, server: KeylessServer, cluster: DevCluster, monkeypatch: pytest.MonkeyPatch):
        self.server = server
        self.cluster = cluster
        self.monkeypatch = monkeypatch
        self.processes = (server, cluster)
        self.authority_host = server.admin.authority_host.rstrip("/")
        self.tenant_id = server.admin.tenant_id
        u = urlsplit(self.authority_host)
        # The resources tokens can be asked for: the resource manager (audience
        # `{authorityHost}/`) and the vaults (`https://vault.HOST:PORT`).
        self.resource_manager = self.authority_host + "/"
        self.vault_resource = f"https://vault.{u.hostname}:{u.port}" if u.port else f"https://vault.{u.hostname}"
        self._admin_token: Optional[str] = None

    # Header and payload of a JWT, unverified: `header, claims = federation.decode(token)`.
    decode = staticmethod(jwt_parts)

    @property
    def resource_manager_scope(self) -> str:
        return f"{self.authority_host}/.default"

    @property
    def vault_scope(self) -> str:
        return f"{self.vault_resource}/.default"

    def create_identity(self, subject: Optional[str] = None) -> WorkloadIdentity:
        """A fresh resource group, identity and federated credential (issuer: the dev
        cluster; subject: the cluster's service account unless given), through the CLI."""
        suffix = uuid.uuid4().hex[:10]
        rg, name, fic = f"wi-rg-{suffix}", f"wi-id-{suffix}", f"wi-fic-{suffix}"
        subject = subject if subject is not None else self.cluster.subject
        s = self.server
        s.cli_json("group", "create", "--name", rg, "--location", "westeurope")
        ident = s.cli_json("identity", "create", "--name", name, "--resource-group", rg)
        cred = s.cli_json(
            "identity", "federated-credential", "create", "--name", fic,
            "--identity-name", name, "--resource-group", rg,
            "--issuer", self.cluster.issuer, "--subject", subject,
        )
        assert cred["properties"]["issuer"] == self.cluster.issuer, cred
        assert cred["properties"]["subject"] == subject, cred
        assert cred["properties"]["audiences"] == ["api://AzureADTokenExchange"], cred
        props = ident["properties"]
        assert props["tenantId"] == self.tenant_id, ident
        return WorkloadIdentity(
            name=name, resource_group=rg, id=ident["id"], tenant_id=props["tenantId"],
            client_id=props["clientId"], principal_id=props["principalId"],
            issuer=self.cluster.issuer, subject=subject,
        )

    def create_vault(self, resource_group: str) -> Vault:
        """A fresh vault (`keyless keyvault create`, RBAC, soft delete on) in the group.
        Its host `{name}.vault.HOST` resolves in this process only with the `vault_hosts`
        fixture."""
        name = f"kv{uuid.uuid4().hex[:12]}"
        out = self.server.cli_json("keyvault", "create", "--name", name, "--resource-group", resource_group)
        uri = out["properties"]["vaultUri"]
        u = urlsplit(self.authority_host)
        assert uri == f"https://{name}.vault.{u.hostname}:{u.port}/", out
        return Vault(name=name, id=out["id"], uri=uri)

    def grant(self, role: str, principal_id: str, scope: str) -> str:
        """`keyless role assignment create` (takes effect on the next request); returns the
        assignment's id (for `keyless role assignment delete --ids`)."""
        out = self.server.cli_json(
            "role", "assignment", "create", "--role", role, "--assignee-object-id", principal_id,
            "--assignee-principal-type", "ServicePrincipal", "--scope", scope,
        )
        assert out["properties"]["principalId"] == principal_id, out
        return out["id"]

    def admin_secret_client(self, vault: Vault):
        """The real azure-keyvault-secrets SecretClient as the bootstrap admin (Key Vault
        Administrator on the subscription), with ClientSecretCredential(authority=...,
        disable_instance_discovery=True)."""
        from azure.keyvault.secrets import SecretClient

        return SecretClient(vault_url=vault.uri, credential=self.server.credential())

    def use(self, identity: WorkloadIdentity) -> None:
        """Set exactly what the workload identity webhook injects into a pod, plus the CA
        bundle: REQUESTS_CA_BUNDLE for Python (azure-core's requests transport), and
        SSL_CERT_FILE for the Rust SDK (rustls-native-certs). This machine pre-sets both to
        the system bundle, so both are overridden."""
        mp = self.monkeypatch
        mp.setenv("AZURE_AUTHORITY_HOST", self.authority_host)
        mp.setenv("AZURE_TENANT_ID", identity.tenant_id)
        mp.setenv("AZURE_CLIENT_ID", identity.client_id)
        mp.setenv("AZURE_FEDERATED_TOKEN_FILE", str(self.cluster.token_file))
        mp.setenv("REQUESTS_CA_BUNDLE", self.server.admin.ca_file)
        mp.setenv("SSL_CERT_FILE", self.server.admin.ca_file)
        # Nothing else that would make DefaultAzureCredential pick another credential.
        for var in ("AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_USERNAME",
                    "AZURE_PASSWORD", "IDENTITY_ENDPOINT", "MSI_ENDPOINT"):
            mp.delenv(var, raising=False)

    # --- checks ------------------------------------------------------------------------

    def check_access_token(self, header: dict, claims: dict, identity: WorkloadIdentity,
                           resource: str) -> None:
        """Every claim WIRE.md §1 specifies for the v1-shaped access tokens Keyless mints."""
        what = f"header {header}, claims {claims}"
        assert header.get("typ") == "JWT", what
        assert header.get("alg") in ("ES256", "RS256"), what
        assert isinstance(header.get("kid"), str) and header["kid"], what
        assert claims.get("aud") == resource, what
        assert claims.get("iss") == f"{self.authority_host}/{identity.tenant_id}/", what
        assert claims.get("tid") == identity.tenant_id, what
        assert claims.get("appid") == identity.client_id, what
        assert claims.get("appidacr") == "2", what
        assert claims.get("oid") == identity.principal_id, what
        assert claims.get("sub") == identity.principal_id, what
        assert isinstance(claims.get("xms_mirid"), str), what
        assert claims["xms_mirid"].lower() == identity.id.lower(), what
        assert claims.get("ver") == "1.0", what
        assert claims.get("idtyp") == "app", what
        assert isinstance(claims.get("uti"), str) and claims["uti"], what
        for t in ("iat", "nbf", "exp"):
            assert type(claims.get(t)) is int, f"{t} is not an integer: {what}"
        now = time.time()
        assert claims["nbf"] <= claims["iat"] + CLOCK_SKEW_S, what
        assert claims["iat"] <= now + CLOCK_SKEW_S, what
        assert claims["nbf"] <= now + CLOCK_SKEW_S, what
        assert claims["exp"] > now, what
        assert abs(claims["exp"] - claims["iat"] - DEFAULT_TOKEN_LIFETIME_S) <= CLOCK_SKEW_S, what

    # --- the sign-in log ---------------------------------------------------------------

    def signins(self, client_id: str) -> list[dict]:
        """The sign-in log entries of one client id, newest first (management API)."""
        if self._admin_token is None:
            self._admin_token = self.server.management_token()
        r = requests.get(
            self.server.admin.resource_manager_url + "providers/Keyless/signInLogs",
            params={"api-version": "2024-01-01", "clientId": client_id},
            headers={"Authorization": f"Bearer {self._admin_token}"},
            verify=self.server.admin.ca_file, timeout=HTTP_TIMEOUT_S,
        )
        assert r.status_code == 200, f"GET {r.url} -> {r.status_code}: {r.text[:2000]}"
        rows = r.json()["value"]
        # The filter is the server's; check it rather than trust it.
        return [row for row in rows if row.get("clientId") == client_id]

    def is_vault(self, resource: Optional[str]) -> bool:
        """Whether a sign-in log `resource` is the vault resource (the log has held both the
        resource and the requested scope, `{resource}/.default`)."""
        r = (resource or "").removesuffix("/.default").rstrip("/")
        return r == self.vault_resource

    def wait_signins(self, client_id: str, done: Callable[[list[dict]], bool],
                     timeout_s: float = 10.0) -> list[dict]:
        """Poll the sign-in log (its writer batches asynchronously) until `done(rows)`."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.signins(client_id)
            if done(rows):
                return rows
            if time.monotonic() > deadline:
                pytest.fail(f"sign-in log of {client_id} after {timeout_s} s: {rows}", pytrace=False)
            time.sleep(0.1)


StartServer = Callable[..., KeylessServer]


@pytest.fixture
def keyless_factory(tmp_path_factory) -> Iterator[StartServer]:
    """Start fresh servers inside one test: `start(data_dir=None, listen="127.0.0.1:0",
    extra_args=())`. Servers still running at the end are stopped and must exit 0."""
    binary = keyless_bin()
    servers: list[KeylessServer] = []

    def start(data_dir: Optional[Path] = None, listen: str = "127.0.0.1:0",
              extra_args: tuple[str, ...] = ()) -> KeylessServer:
        d = data_dir if data_dir is not None else tmp_path_factory.mktemp("keyless-data")
        server = KeylessServer(binary, d, listen, extra_args)
        servers.append(server)
        return server

    yield start
    failures = []
    for s in servers:
        code = s.stop()
        # Printed output shows up in pytest's report when the test fails.
        print(f"--- server output ({s.data_dir}) ---\n{s.output()}")
        if code != 0:
            failures.append(f"server on {s.data_dir} exited with {code} after SIGTERM")
    assert not failures, "; ".join(failures)


@pytest.fixture(scope="session")
def keyless(tmp_path_factory) -> Iterator[KeylessServer]:
    """One server shared by every test that only adds its own, uniquely named objects."""
    server = KeylessServer(keyless_bin(), tmp_path_factory.mktemp("keyless-data"), "127.0.0.1:0", ())
    yield server
    code = server.stop()
    assert code == 0, f"server exited with {code} after SIGTERM\n--- server output ---\n{server.output()}"


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory) -> Iterator[DevCluster]:
    """One `keyless dev-cluster` shared by the session, with a projected token file for
    `system:serviceaccount:keyless-tests:workload`."""
    d = tmp_path_factory.mktemp("dev-cluster")
    cluster = DevCluster(
        keyless_bin(), d / "data", d / "token", namespace="keyless-tests", service_account="workload",
    )
    yield cluster
    cluster.stop_cleanly()


@pytest.fixture(scope="session")
def federated_keyless(tmp_path_factory, dev_cluster: DevCluster) -> Iterator[KeylessServer]:
    """One server shared by the session that trusts the dev cluster's issuer: it is on
    loopback (`--allow-private-issuers`) behind the cluster's own CA (`--trust-ca`)."""
    server = KeylessServer(
        keyless_bin(), tmp_path_factory.mktemp("keyless-data"), "127.0.0.1:0",
        ("--allow-private-issuers", "--trust-ca", str(dev_cluster.ca_file)),
    )
    yield server
    server.stop_cleanly()


@pytest.fixture
def federation(federated_keyless: KeylessServer, dev_cluster: DevCluster,
               monkeypatch: pytest.MonkeyPatch) -> Federation:
    """The federated server and the dev cluster, with Keyless' CA trusted for this test."""
    federated_keyless.trust_ca(monkeypatch)
    return Federation(federated_keyless, dev_cluster, monkeypatch)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test on a shared server fails, show what the server (and dev cluster) logged."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    shown: list[KeylessProcess] = []
    for name in ("keyless", "federated_keyless", "dev_cluster"):
        p = funcargs.get(name)
        if isinstance(p, KeylessProcess) and p not in shown:
            shown.append(p)
    for p in shown:
        tail = "\n".join(p.output().splitlines()[-200:])
        title = "keyless server" if isinstance(p, KeylessServer) else f"keyless {p.what}"
        report.sections.append((f"{title} output (last 200 lines)", tail))


@pytest.fixture
def server(keyless: KeylessServer, monkeypatch: pytest.MonkeyPatch) -> KeylessServer:
    """The shared server, with its CA trusted for this test."""
    keyless.trust_ca(monkeypatch)
    return keyless


@pytest.fixture
def vault_hosts(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make the vault hosts (`{vault}.vault.localhost`) resolve to the server, inside this test
    process only. glibc does not resolve `*.localhost` sub-domains here (nsswitch: files dns),
    and these tests must not edit /etc/hosts, so `socket.getaddrinfo` — which urllib3 (under
    requests, azure-core's default transport) calls for every new connection — answers
    127.0.0.1 for exactly those names, the address every test server listens on. Everything
    else (the URL, the Host header, SNI, certificate verification) is what the unmodified SDK
    does with the vault's real name. Returns the suffix it resolves (`.vault.localhost`)."""
    suffix = ".vault.localhost"
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".").endswith(suffix):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return suffix
