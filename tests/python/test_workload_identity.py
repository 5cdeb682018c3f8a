"""Issue 3, "Done means": the real, unmodified azure-identity `WorkloadIdentityCredential`
(from PyPI), configured only through the environment variables the AKS workload identity
webhook injects into a pod, exchanges the projected service-account token that
`keyless dev-cluster` writes for an access token from Keyless, and that token carries the
claims WIRE.md §1 specifies."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential


def test_workload_identity_credential_gets_a_token_with_the_specified_claims(federation):
    identity = federation.create_identity()
    federation.use(identity)

    cred = WorkloadIdentityCredential()
    before = time.time()
    token = cred.get_token(federation.resource_manager_scope)

    header, claims = federation.decode(token.token)
    federation.check_access_token(header, claims, identity, federation.resource_manager)
    # The SDK computes expires_on from expires_in: both agree with the token's exp.
    assert abs(token.expires_on - claims["exp"]) <= 5, (token.expires_on, claims)
    assert token.expires_on > before + 3000, token


def test_second_get_token_is_served_from_the_sdk_cache(federation):
    identity = federation.create_identity()
    federation.use(identity)
    cred = WorkloadIdentityCredential()

    first = cred.get_token(federation.resource_manager_scope)
    rows = federation.wait_signins(identity.client_id, lambda rows: len(rows) >= 1)
    assert [r["status"] for r in rows] == ["success"], rows
    assert rows[0]["issuer"] == federation.cluster.issuer, rows
    assert rows[0]["subject"] == federation.cluster.subject, rows
    assert rows[0]["principalId"] == identity.principal_id, rows

    second = cred.get_token(federation.resource_manager_scope)
    assert second.token == first.token
    assert second.expires_on == first.expires_on

    # Another resource is another exchange. Once it is in the log, so would be any request
    # the second call made before it: the log is written in order.
    vault = cred.get_token(federation.vault_scope)
    header, claims = federation.decode(vault.token)
    federation.check_access_token(header, claims, identity, federation.vault_resource)
    assert claims["uti"] != federation.decode(first.token)[1]["uti"]
    rows = federation.wait_signins(
        identity.client_id, lambda rows: any(federation.is_vault(r["resource"]) for r in rows)
    )
    assert [r["status"] for r in rows] == ["success", "success"], rows
    assert federation.is_vault(rows[0]["resource"]) and not federation.is_vault(rows[1]["resource"]), rows


def test_wrong_subject_raises_client_authentication_error_with_aadsts700213(federation):
    expected_subject = f"system:serviceaccount:{federation.cluster.namespace}:some-other-sa"
    identity = federation.create_identity(subject=expected_subject)
    federation.use(identity)

    with pytest.raises(ClientAuthenticationError) as excinfo:
        WorkloadIdentityCredential().get_token(federation.resource_manager_scope)
    message = str(excinfo.value)
    assert "AADSTS700213" in message, message
    # The description names what the credential expected and what the token carried.
    assert expected_subject in message, message
    assert federation.cluster.subject in message, message

    rows = federation.wait_signins(identity.client_id, lambda rows: len(rows) >= 1)
    assert [(r["status"], r["errorCode"]) for r in rows] == [("failure", 700213)], rows


def test_default_azure_credential_picks_workload_identity(federation):
    """What most applications write: DefaultAzureCredential, whose chain reaches
    WorkloadIdentityCredential when the webhook's variables are set (and no AZURE_CLIENT_SECRET)."""
    identity = federation.create_identity()
    federation.use(identity)

    cred = DefaultAzureCredential(exclude_managed_identity_credential=True)
    token = cred.get_token(federation.vault_scope)
    header, claims = federation.decode(token.token)
    federation.check_access_token(header, claims, identity, federation.vault_resource)
