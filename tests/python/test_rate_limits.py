"""Rate limits as the Azure SDKs meet them: a throttled token request gets 429 with
Retry-After in Entra's shape, and the real azure-identity retries it and succeeds."""

import time

import requests


def test_azure_identity_retries_a_throttled_token_request(keyless_factory, monkeypatch):
    # One token request a second for the admin client, burst of five.
    server = keyless_factory(extra_args=("--rate-limit-per-client", "1"))
    server.trust_ca(monkeypatch)
    scope = server.admin.resource_manager_url + ".default"
    started = time.monotonic()
    tokens = []
    # Each credential has its own MSAL cache: seven credentials, seven token requests.
    for _ in range(7):
        with server.credential() as cred:
            tokens.append(cred.get_token(scope).token)
    elapsed = time.monotonic() - started
    assert len(set(tokens)) == 7
    # Requests six and seven were throttled; the SDK waited Retry-After and retried.
    assert elapsed >= 1.0, f"no request was throttled (took {elapsed:.2f} s)"
    metrics = requests.get(
        server.admin.authority_host.rstrip("/") + "/metrics",
        headers={"Authorization": f"Bearer {tokens[-1]}"},
        verify=server.admin.ca_file,
        timeout=10,
    )
    assert metrics.status_code == 200, metrics.text
    throttled = [
        line for line in metrics.text.splitlines()
        if line.startswith('keyless_requests_throttled_total{limit="per_client"}')
    ]
    assert throttled and int(throttled[0].split()[-1]) >= 1, metrics.text


def test_a_throttled_token_request_is_shaped_like_entra(keyless_factory):
    server = keyless_factory(extra_args=("--rate-limit-per-client", "1"))
    url = f"{server.admin.authority_host.rstrip('/')}/{server.admin.tenant_id}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": server.admin.client_id,
        "client_secret": "wrong",
        "scope": server.admin.resource_manager_url + ".default",
    }
    codes = []
    last = None
    for _ in range(6):
        last = requests.post(url, data=form, verify=server.admin.ca_file, timeout=10)
        codes.append(last.status_code)
    assert codes[:5] == [401] * 5, codes
    assert last.status_code == 429, last.text
    assert int(last.headers["Retry-After"]) >= 1
    body = last.json()
    assert body["error"] == "temporarily_unavailable", body
    assert body["error_codes"] == [90055], body
    assert body["error_description"].startswith("AADSTS90055: "), body
    assert body["correlation_id"] and body["trace_id"], body
