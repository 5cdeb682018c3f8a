"""Fixtures that run the real `keyless serve` binary for the Python SDK interop tests.

The server is started exactly as a user would start it (`keyless serve` on loopback, a
fresh data dir, port 0 so tests never collide), and everything the tests need to talk to
it comes from the `{data-dir}/admin.json` it writes on first start.

Binary: `$KEYLESS_BIN`, else `<repo>/target/debug/keyless` (what `cargo build` makes).
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]

# The server prints e.g. `keyless serve: ready at https://localhost:43123` once it
# accepts connections. Stop at whitespace or a quote, in case the line is ever wrapped
# in a JSON log record.
READY_RE = re.compile(r"ready at (https://[^\s\"']+)")
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


class KeylessServer:
    """One running `keyless serve` process."""

    def __init__(self, binary: Path, data_dir: Path, listen: str, extra_args: tuple[str, ...]):
        self.data_dir = data_dir
        self.cmd = [
            str(binary), "serve",
            "--data-dir", str(data_dir),
            "--listen", listen,
            "--log-format", "json",
            *extra_args,
        ]
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
        admin_path = data_dir / "admin.json"
        if not admin_path.is_file():
            self._fail(f"server is ready but {admin_path} does not exist")
        self.admin = Admin.load(admin_path)

    # --- process plumbing -------------------------------------------------------------

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
            f"--- server output ---\n{self.output()}",
            pytrace=False,
        )

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail(f"server did not print 'ready at https://...' within {READY_TIMEOUT_S} s")
            try:
                line = self._stdout_lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail("server closed stdout (exited?) before printing its ready line")
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
                    f"server did not exit within {STOP_TIMEOUT_S} s of SIGTERM; killed\n"
                    f"--- server output ---\n{self.output()}",
                    pytrace=False,
                )
        for t in self._threads:
            t.join(timeout=5)
        return self.proc.returncode

    def stop_cleanly(self) -> None:
        code = self.stop()
        assert code == 0, f"server exited with {code} after SIGTERM\n--- server output ---\n{self.output()}"

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """When a test on the shared server fails, show what the server logged."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("keyless")
    if report.when == "call" and report.failed and isinstance(server, KeylessServer):
        tail = "\n".join(server.output().splitlines()[-200:])
        report.sections.append(("keyless server output (last 200 lines)", tail))


@pytest.fixture
def server(keyless: KeylessServer, monkeypatch: pytest.MonkeyPatch) -> KeylessServer:
    """The shared server, with its CA trusted for this test."""
    keyless.trust_ca(monkeypatch)
    return keyless
