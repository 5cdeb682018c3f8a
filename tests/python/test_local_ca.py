"""The local CA `keyless serve` generates is name-constrained (critical, with DNS and IP
subtrees), so a data directory stolen with its CA key cannot be used to impersonate
other sites to clients told to trust `ca.pem`. Checked with OpenSSL (Python's `ssl`,
what `requests` and azure-identity use) against the real server's data directory.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID


def load_ca(data_dir: Path):
    cert = x509.load_pem_x509_certificate((data_dir / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((data_dir / "ca-key.pem").read_bytes(), None)
    return cert, key


def forge_leaf(ca_cert, ca_key, name: str):
    """What a thief holding ca-key.pem would issue for `name`."""
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        san = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        san = x509.DNSName(name)
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def handshake(tmp_path: Path, ca_file: str, cert, key, server_name: str) -> None:
    """A TLS handshake on loopback: a server presenting `cert`, a client trusting only
    `ca_file` and checking `server_name`. Raises ssl.SSLError when refused."""
    cert_file, key_file = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    client_ctx = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname=server_name):
                pass
    finally:
        listener.close()
        t.join(timeout=10)


def test_the_ca_carries_critical_dns_and_ip_name_constraints(keyless):
    ca_cert, _ = load_ca(keyless.data_dir)
    ext = ca_cert.extensions.get_extension_for_oid(ExtensionOID.NAME_CONSTRAINTS)
    assert ext.critical
    permitted = ext.value.permitted_subtrees
    dns = {n.value for n in permitted if isinstance(n, x509.DNSName)}
    ips = {n.value for n in permitted if isinstance(n, x509.IPAddress)}
    assert "localhost" in dns, dns
    assert ipaddress.ip_network("127.0.0.0/8") in ips, ips
    assert ipaddress.ip_network("::1/128") in ips, ips
    assert not ext.value.excluded_subtrees


def test_the_servers_own_certificate_still_verifies(keyless, tmp_path):
    # The SDK tests exercise this end to end; here the chain alone, by OpenSSL.
    ctx = ssl.create_default_context(cafile=keyless.admin.ca_file)
    host, port = keyless.admin.authority_host.removeprefix("https://").rsplit(":", 1)
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.version() in ("TLSv1.3", "TLSv1.2")


@pytest.mark.parametrize(
    "name",
    ["login.microsoftonline.com", "localhost.evil.test", "8.8.8.8", "10.0.0.1"],
)
def test_a_stolen_ca_key_cannot_impersonate_other_sites(keyless, tmp_path, name):
    ca_cert, ca_key = load_ca(keyless.data_dir)
    cert, key = forge_leaf(ca_cert, ca_key, name)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(tmp_path, keyless.admin.ca_file, cert, key, name)


def test_a_leaf_inside_the_scope_would_verify(keyless, tmp_path):
    # The control: the same forging succeeds for a name inside the constraints, so the
    # refusals above are the constraints' doing, not a broken test.
    ca_cert, ca_key = load_ca(keyless.data_dir)
    cert, key = forge_leaf(ca_cert, ca_key, "a.vault.localhost")
    handshake(tmp_path, keyless.admin.ca_file, cert, key, "a.vault.localhost")
