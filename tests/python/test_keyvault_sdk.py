"""Issue 4, "Done means": the real, unmodified `azure-keyvault-secrets` `SecretClient` (from
PyPI) against a Keyless vault, authenticated by the unmodified azure-identity
`WorkloadIdentityCredential` (a `keyless dev-cluster` projected token exchanged through a
federated credential) or, for the admin, `ClientSecretCredential`.

Everything the SDK does is its default: challenge authentication with
`verify_challenge_resource=True` (the vault host `{vault}.vault.localhost:PORT` must be a
sub-domain of the challenge's `resource`, port included), the api-version it sends
(2026-04-01), its paging (absolute `nextLink`) and its delete/recover pollers. The CA comes
from `REQUESTS_CA_BUNDLE`. Only name resolution is the test's: `vault_hosts` (conftest.py)
makes `*.vault.localhost` resolve to 127.0.0.1 inside this process.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
SET_SECRET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
VERSION_RE = re.compile(r"^[0-9a-f]{32}$")


def workload_client(federation, identity, vault) -> SecretClient:
    """What the workload's code writes: `SecretClient(vault_url, WorkloadIdentityCredential())`
    with everything configured by the webhook's environment variables (set here for
    `identity`; the credential reads them when it is created)."""
    federation.use(identity)
    return SecretClient(vault_url=vault.uri, credential=WorkloadIdentityCredential())


def forbidden_by_rbac(excinfo, identity, action: str, scope: str) -> None:
    """403 `Forbidden` / innererror `ForbiddenByRbac`, naming the caller, action and scope."""
    e = excinfo.value
    assert type(e) is HttpResponseError, repr(e)
    assert e.status_code == 403, repr(e)
    assert e.error is not None, repr(e)
    assert e.error.code == "Forbidden", repr(e)
    assert e.error.innererror.get("code") == "ForbiddenByRbac", (e.error.innererror, repr(e))
    message = e.error.message
    assert f"appid={identity.client_id}" in message, message
    assert f"oid={identity.principal_id}" in message, message
    assert f"Action: '{action}'" in message, message
    assert f"Resource: '{scope.lower()}'" in message, message


def test_workload_without_role_gets_403_then_succeeds_right_after_the_assignment(federation, vault_hosts):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    client = workload_client(federation, identity, vault)
    secret_scope = f"{vault.id}/secrets/db-password"
    # The workload is the vault's first caller: its request gets the 401 challenge, the SDK
    # gets a token for the challenge's resource with WorkloadIdentityCredential, and the
    # retried request is refused for want of a role (403, not 401: the token is good).
    # (The SDK caches challenges per host for the whole process, so only a vault's first
    # client goes through the 401.)
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("db-password")
    forbidden_by_rbac(excinfo, identity, GET_SECRET, secret_scope)

    admin = federation.admin_secret_client(vault)
    stored = admin.set_secret("db-password", "s3cret-value", content_type="text/plain")
    assert stored.value == "s3cret-value"
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("db-password")
    forbidden_by_rbac(excinfo, identity, GET_SECRET, secret_scope)

    # The role, at the vault's scope; the very next call on the same client (same cached
    # token, no restart) succeeds.
    assignment = federation.grant("Key Vault Secrets User", identity.principal_id, vault.id)
    got = client.get_secret("db-password")
    assert got.value == "s3cret-value"
    assert got.properties.version == stored.properties.version
    assert got.properties.content_type == "text/plain"
    assert got.id == f"{vault.uri}secrets/db-password/{stored.properties.version}"
    assert [p.name for p in client.list_properties_of_secrets()] == ["db-password"]

    # Secrets User reads; it does not write.
    with pytest.raises(HttpResponseError) as excinfo:
        client.set_secret("db-password", "overwritten")
    forbidden_by_rbac(excinfo, identity, SET_SECRET, secret_scope)
    assert admin.get_secret("db-password").value == "s3cret-value"

    # Revoking is just as immediate.
    federation.server.cli("role", "assignment", "delete", "--ids", assignment)
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("db-password")
    forbidden_by_rbac(excinfo, identity, GET_SECRET, secret_scope)


def test_role_at_one_secret_scope_grants_only_that_secret(federation, vault_hosts):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    admin = federation.admin_secret_client(vault)
    admin.set_secret("mine", "a")
    admin.set_secret("theirs", "b")
    federation.grant("Key Vault Secrets User", identity.principal_id, f"{vault.id}/secrets/mine")

    client = workload_client(federation, identity, vault)
    assert client.get_secret("mine").value == "a"
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("theirs")
    forbidden_by_rbac(excinfo, identity, GET_SECRET, f"{vault.id}/secrets/theirs")


def test_secrets_officer_set_get_list_versions_update_delete_recover_purge(federation, vault_hosts):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    client = workload_client(federation, identity, vault)

    # set: a new secret, then a second version
    before = int(time.time()) - 5
    v1 = client.set_secret("app-config", "one", content_type="text/plain", tags={"env": "test"})
    assert v1.value == "one"
    p1 = v1.properties
    assert VERSION_RE.match(p1.version), p1.version
    assert p1.name == "app-config"
    assert p1.vault_url == vault.uri.rstrip("/")
    assert p1.id == f"{vault.uri}secrets/app-config/{p1.version}"
    assert p1.enabled is True
    assert p1.content_type == "text/plain"
    assert p1.tags == {"env": "test"}
    assert p1.created_on.timestamp() >= before
    assert p1.updated_on == p1.created_on
    assert p1.recovery_level == "Recoverable+Purgeable"
    assert p1.recoverable_days == 90
    v2 = client.set_secret("app-config", "two")
    p2 = v2.properties
    assert p2.version != p1.version
    client.set_secret("other", "x")

    # get: latest, and by version
    assert client.get_secret("app-config").value == "two"
    assert client.get_secret("app-config", p1.version).value == "one"
    assert client.get_secret("app-config", p1.version).properties.tags == {"env": "test"}

    # list: one item per secret (ids without a version); versions: one per version
    listed = {p.name: p for p in client.list_properties_of_secrets()}
    assert set(listed) == {"app-config", "other"}, listed
    assert listed["app-config"].id == f"{vault.uri}secrets/app-config"
    assert listed["app-config"].version is None
    versions = list(client.list_properties_of_secret_versions("app-config"))
    assert {v.version for v in versions} == {p1.version, p2.version}
    assert all(v.name == "app-config" and v.enabled for v in versions)

    # update: disable the latest version; get then refuses it the way Key Vault does
    # (403 Forbidden, innererror SecretDisabled); the older version is still readable
    updated = client.update_secret_properties("app-config", p2.version, enabled=False, content_type="text/x")
    assert updated.enabled is False and updated.content_type == "text/x"
    assert updated.version == p2.version
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("app-config")
    assert excinfo.value.status_code == 403, repr(excinfo.value)
    assert excinfo.value.error.code == "Forbidden", repr(excinfo.value)
    assert excinfo.value.error.innererror.get("code") == "SecretDisabled", repr(excinfo.value)
    assert client.get_secret("app-config", p1.version).value == "one"
    # ... and re-enable it (update without a version: the latest)
    assert client.update_secret_properties("app-config", enabled=True).enabled is True
    assert client.get_secret("app-config").value == "two"

    # delete: the poller polls GET /deletedsecrets/{name} until it answers 200
    poller = client.begin_delete_secret("app-config")
    poller.wait(timeout=60)
    assert poller.done()
    deleted = poller.result()
    assert deleted.name == "app-config"
    assert deleted.recovery_id == f"{vault.uri}deletedsecrets/app-config"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert (deleted.scheduled_purge_date - deleted.deleted_date).days == 90
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("app-config")
    assert [p.name for p in client.list_properties_of_secrets()] == ["other"]
    # a deleted-but-recoverable name cannot be reused
    with pytest.raises(ResourceExistsError) as excinfo:
        client.set_secret("app-config", "three")
    assert excinfo.value.status_code == 409
    assert excinfo.value.error.innererror.get("code") == "ObjectIsDeletedButRecoverable", repr(excinfo.value)
    got_deleted = client.get_deleted_secret("app-config")
    assert got_deleted.recovery_id == deleted.recovery_id
    assert got_deleted.properties.version == p2.version
    assert [d.name for d in client.list_deleted_secrets()] == ["app-config"]

    # recover: the poller polls GET /secrets/{name}/ until it answers 200
    poller = client.begin_recover_deleted_secret("app-config")
    poller.wait(timeout=60)
    assert poller.done()
    recovered = poller.result()
    assert recovered.name == "app-config" and recovered.version == p2.version
    assert client.get_secret("app-config").value == "two"
    assert len(list(client.list_properties_of_secret_versions("app-config"))) == 2
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("app-config")

    # delete again, then purge: the name is free, with no history
    client.begin_delete_secret("app-config").wait(timeout=60)
    client.purge_deleted_secret("app-config")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("app-config")
    assert list(client.list_deleted_secrets()) == []
    fresh = client.set_secret("app-config", "four")
    assert [v.version for v in client.list_properties_of_secret_versions("app-config")] == [fresh.properties.version]


def test_lists_follow_next_link_across_pages(federation, vault_hosts):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    client = workload_client(federation, identity, vault)

    names = [f"s{i:02d}" for i in range(30)]
    for n in names:
        client.set_secret(n, f"value-{n}")
    pages = [list(page) for page in client.list_properties_of_secrets().by_page()]
    assert [len(p) for p in pages] == [25, 5], [len(p) for p in pages]
    assert sorted(p.name for page in pages for p in page) == names
    # the flat iterator follows nextLink too
    assert sorted(p.name for p in client.list_properties_of_secrets()) == names
    # a smaller page size is honoured on every page
    pages = [list(page) for page in client.list_properties_of_secrets(max_page_size=7).by_page()]
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2], [len(p) for p in pages]

    for i in range(27):
        client.set_secret("rotated", f"v{i}")
    versions = [list(page) for page in client.list_properties_of_secret_versions("rotated").by_page()]
    assert [len(p) for p in versions] == [25, 2], [len(p) for p in versions]
    assert len({v.version for page in versions for v in page}) == 27


def test_missing_secret_and_bad_name(federation, vault_hosts):
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    client = workload_client(federation, identity, vault)

    with pytest.raises(ResourceNotFoundError) as excinfo:
        client.get_secret("does-not-exist")
    assert excinfo.value.status_code == 404
    assert excinfo.value.error.code == "SecretNotFound", repr(excinfo.value)
    assert "does-not-exist" in excinfo.value.error.message
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("does-not-exist", "0123456789abcdef0123456789abcdef")
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret("does-not-exist")
    with pytest.raises(ResourceNotFoundError):
        client.begin_delete_secret("does-not-exist")
    with pytest.raises(ResourceNotFoundError):
        list(client.list_properties_of_secret_versions("does-not-exist"))

    # Key Vault's name rule: letters, digits and '-' (the SDK URL-quotes the name).
    with pytest.raises(HttpResponseError) as excinfo:
        client.set_secret("not_a_valid_name", "x")
    assert excinfo.value.status_code == 400, repr(excinfo.value)
    assert excinfo.value.error.code == "BadParameter", repr(excinfo.value)


def test_token_of_an_identity_in_another_role_scope_is_not_an_authentication_error(federation, vault_hosts):
    """A workload with a role on another vault only: the vault accepts its token (the
    challenge flow completes) and refuses the action with 403, not 401."""
    identity = federation.create_identity()
    mine = federation.create_vault(identity.resource_group)
    other = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, mine.id)
    federation.admin_secret_client(other).set_secret("s", "v")

    client = workload_client(federation, identity, other)
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("s")
    assert not isinstance(excinfo.value, ClientAuthenticationError), repr(excinfo.value)
    forbidden_by_rbac(excinfo, identity, GET_SECRET, f"{other.id}/secrets/s")
    assert workload_client(federation, identity, mine).set_secret("s", "mine").value == "mine"


def test_nbf_exp_round_trip_and_are_enforced(federation, vault_hosts):
    """`not_before`/`expires_on` travel as integer Unix seconds both ways; a version outside
    its validity window is refused with 403 (innererror SecretExpired / SecretNotYetValid),
    as Key Vault does, while its metadata stays listable."""
    identity = federation.create_identity()
    vault = federation.create_vault(identity.resource_group)
    federation.grant("Key Vault Secrets Officer", identity.principal_id, vault.id)
    client = workload_client(federation, identity, vault)

    now = datetime.now(timezone.utc).replace(microsecond=0)
    window = client.set_secret("window", "w", not_before=now - timedelta(hours=1), expires_on=now + timedelta(hours=1))
    assert window.properties.not_before == now - timedelta(hours=1)
    assert window.properties.expires_on == now + timedelta(hours=1)
    assert client.get_secret("window").value == "w"

    client.set_secret("expired", "x", expires_on=now - timedelta(hours=1))
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("expired")
    assert excinfo.value.status_code == 403, repr(excinfo.value)
    assert excinfo.value.error.innererror.get("code") == "SecretExpired", repr(excinfo.value)

    client.set_secret("later", "x", not_before=now + timedelta(hours=1))
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("later")
    assert excinfo.value.status_code == 403, repr(excinfo.value)
    assert excinfo.value.error.innererror.get("code") == "SecretNotYetValid", repr(excinfo.value)

    listed = {p.name: p for p in client.list_properties_of_secrets()}
    assert listed["expired"].expires_on == now - timedelta(hours=1)
    assert listed["later"].not_before == now + timedelta(hours=1)
