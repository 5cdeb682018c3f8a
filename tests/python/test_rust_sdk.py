"""Issue 3, "Done means", second half: the real, unmodified Rust Azure SDK (`azure_identity`
from crates.io) gets a token from Keyless with `WorkloadIdentityCredential`, configured only
through the workload identity environment variables (and SSL_CERT_FILE for Keyless' CA).

The Rust side is the separate cargo project interop/rust-azure-sdk (its own workspace and
lock file, outside Keyless' dependency policy), built by `./scripts/test.sh build`. Its binary
calls `get_token` and prints the access token's decoded header and claims as JSON.
Binary: `$KEYLESS_RUST_SDK_BIN`, else interop/rust-azure-sdk/target/debug/rust-azure-sdk-interop.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECT = REPO_ROOT / "interop" / "rust-azure-sdk"
# The SDK retries transient failures with backoff; a hung exchange must still fail the test.
RUN_TIMEOUT_S = 120


def rust_sdk_bin() -> Path:
    env = os.environ.get("KEYLESS_RUST_SDK_BIN")
    path = Path(env) if env else PROJECT / "target" / "debug" / "rust-azure-sdk-interop"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"Rust SDK interop binary not found or not executable: {path}\n"
            f"Build it with `cargo build --manifest-path {PROJECT / 'Cargo.toml'}` "
            "(./scripts/test.sh does), or set KEYLESS_RUST_SDK_BIN.",
            pytrace=False,
        )
    return path


def run_rust_sdk(scope: str, repeat: int = 0) -> subprocess.CompletedProcess:
    """Run the binary with this process' environment (which the test set with monkeypatch)."""
    cmd = [str(rust_sdk_bin()), scope, "--repeat", str(repeat)]
    return subprocess.run(
        cmd, env=dict(os.environ), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        errors="replace", timeout=RUN_TIMEOUT_S,
    )


def describe(done: subprocess.CompletedProcess) -> str:
    return (
        f"{' '.join(done.args)} exited with {done.returncode}\n"
        f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    )


def test_rust_workload_identity_credential_gets_a_token_with_the_specified_claims(federation):
    identity = federation.create_identity()
    federation.use(identity)

    done = run_rust_sdk(federation.resource_manager_scope, repeat=2)
    assert done.returncode == 0, describe(done)
    out = json.loads(done.stdout)
    federation.check_access_token(out["header"], out["claims"], identity, federation.resource_manager)
    # The Rust SDK needs an integer expires_in; it computes expires_on from it.
    assert abs(out["expires_on"] - out["claims"]["exp"]) <= 5, out
    # The two repeated calls were answered from the credential's cache ...
    assert out["repeat_same_token"] is True, out

    # ... so the log has one exchange for the resource manager, and then the vault one that
    # the second run makes (the log is written in order: once the vault's is in, any
    # earlier one is too).
    done = run_rust_sdk(federation.vault_scope)
    assert done.returncode == 0, describe(done)
    vault = json.loads(done.stdout)
    federation.check_access_token(vault["header"], vault["claims"], identity, federation.vault_resource)
    rows = federation.wait_signins(
        identity.client_id, lambda rows: any(federation.is_vault(r["resource"]) for r in rows)
    )
    assert [r["status"] for r in rows] == ["success", "success"], rows
    assert rows[1]["issuer"] == federation.cluster.issuer, rows
    assert rows[1]["subject"] == federation.cluster.subject, rows


def test_rust_wrong_subject_fails_with_aadsts700213(federation):
    expected_subject = f"system:serviceaccount:{federation.cluster.namespace}:some-other-sa"
    identity = federation.create_identity(subject=expected_subject)
    federation.use(identity)

    done = run_rust_sdk(federation.resource_manager_scope)
    assert done.returncode == 1, describe(done)
    # The SDK's error carries the service's error_description.
    assert "WorkloadIdentityCredential authentication failed" in done.stderr, describe(done)
    assert "AADSTS700213" in done.stderr, describe(done)
    assert expected_subject in done.stderr, describe(done)
    assert federation.cluster.subject in done.stderr, describe(done)
