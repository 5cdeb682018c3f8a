"""Deployment manifests: `kubectl kustomize deploy/...` renders offline, every object
validates against the Kubernetes OpenAPI schemas (strict: no unknown fields) with the
`kubernetes-validate` package (which ships the schemas), and the objects fit together
(selectors, ports, names, flags the binary really has).

The objects `keyless webhook certs` and `keyless serviceaccount manifest` print are
validated the same way, and the printed MutatingWebhookConfiguration must equal the one
in deploy/webhook except for its caBundle.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
KUSTOMIZATIONS = ["webhook", "webhook-cert-manager", "serve", "serve-postgres"]
# The oldest Kubernetes Keyless supports, and the newest the validator knows.
K8S_VERSIONS = ["1.33.0", kubernetes_validate.latest_version()]
# Kinds that are not Kubernetes built-ins (no schema in the validator).
CRD_GROUPS = {"cert-manager.io/v1": {"Issuer", "Certificate"}}
NAMESPACE = "keyless-system"


def keyless_bin() -> Path:
    env = os.environ.get("KEYLESS_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "keyless"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"keyless binary not found: {path} (cargo build, or set KEYLESS_BIN)")
    return path


def run_keyless(*args: str, cwd: Path | None = None) -> str:
    out = subprocess.run(
        [str(keyless_bin()), *args], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    assert out.returncode == 0, f"keyless {' '.join(args)} failed:\n{out.stderr}"
    return out.stdout


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is needed to render the kustomizations (apt-get install kubectl)")
    return path


def render(name: str) -> list[dict]:
    out = subprocess.run(
        [kubectl(), "kustomize", str(DEPLOY / name)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"kubectl kustomize deploy/{name} failed:\n{out.stderr}"
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert docs, f"deploy/{name} rendered nothing"
    return docs


def validate(doc: dict) -> None:
    kinds = CRD_GROUPS.get(doc.get("apiVersion", ""))
    if kinds is not None:
        assert doc["kind"] in kinds, doc
        return
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {version}: {e}")


def by_kind(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def flags_of(help_text: str) -> set[str]:
    return set(re.findall(r"--[a-z][a-z0-9-]*", help_text))


def arg_flags(args: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renders_offline_and_validates_strictly(name: str) -> None:
    docs = render(name)
    for doc in docs:
        validate(doc)
        if doc["kind"] not in {"Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"}:
            assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]


def test_the_validator_really_rejects_bad_objects() -> None:
    """A guard against a validator that accepts anything (e.g. schemas missing)."""
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": "https"}]}},
            "1.33.0",
            strict=True,
        )
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1}, "1.33.0", strict=True
        )


def test_webhook_objects_fit_together() -> None:
    docs = render("webhook")
    deploy = by_kind(docs, "Deployment", "keyless-webhook")
    pod = deploy["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert deploy["spec"]["replicas"] == 2
    pod_labels = pod["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The webhook's own pods are not labelled for mutation (no self-deadlock).
    assert "azure.workload.identity/use" not in pod_labels

    pdb = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    svc = by_kind(docs, "Service", "keyless-webhook")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    https = next(p for p in svc["spec"]["ports"] if p["port"] == 443)
    assert https["targetPort"] == "https" and ports["https"] == 9443
    assert f"--listen=0.0.0.0:{ports['https']}" in container["args"]
    assert f"--metrics-listen=0.0.0.0:{ports['metrics']}" in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"

    # RBAC: read-only access to ServiceAccounts, bound to the Deployment's account.
    role = by_kind(docs, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list", "watch"]}]
    binding = by_kind(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": pod["spec"]["serviceAccountName"], "namespace": NAMESPACE}
    ]

    # Certificates: the Secret volume is what --cert-dir points at.
    mount = next(m for m in container["volumeMounts"] if m["name"] == "certs")
    assert f"--cert-dir={mount['mountPath']}" in container["args"]
    secret_volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "certs")
    assert secret_volume["secret"]["secretName"] == "keyless-webhook-tls"

    # Configuration: the generated ConfigMap carries the two required settings.
    cm_name = container["envFrom"][0]["configMapRef"]["name"]
    cm = by_kind(docs, "ConfigMap", cm_name)
    assert set(cm["data"]) == {"AZURE_TENANT_ID", "KEYLESS_AUTHORITY_HOST"}
    assert cm["data"]["KEYLESS_AUTHORITY_HOST"].startswith("https://")

    mwc = by_kind(docs, "MutatingWebhookConfiguration")
    (hook,) = mwc["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["sideEffects"] == "None"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["timeoutSeconds"] <= 10
    assert hook["objectSelector"] == {"matchLabels": {"azure.workload.identity/use": "true"}}
    (expr,) = hook["namespaceSelector"]["matchExpressions"]
    assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn"
    assert set(expr["values"]) == {"kube-system", NAMESPACE}
    assert hook["rules"] == [
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}
    ]
    assert hook["clientConfig"]["service"] == {
        "name": svc["metadata"]["name"],
        "namespace": NAMESPACE,
        "path": "/mutate-v1-pod",
        "port": 443,
    }


def test_deployment_flags_exist_in_the_binary() -> None:
    webhook = by_kind(render("webhook"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert webhook["args"][0] == "webhook"
    known = flags_of(run_keyless("webhook", "--help"))
    assert arg_flags(webhook["args"]) <= known, arg_flags(webhook["args"]) - known
    serve = by_kind(render("serve"), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert serve["args"][0] == "serve"
    known = flags_of(run_keyless("serve", "--help"))
    assert arg_flags(serve["args"]) <= known, arg_flags(serve["args"]) - known


def test_cert_manager_overlay_issues_the_secret_the_deployment_mounts() -> None:
    docs = render("webhook-cert-manager")
    cert = by_kind(docs, "Certificate")
    assert cert["spec"]["secretName"] == "keyless-webhook-tls"
    assert f"keyless-webhook.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
    issuer = by_kind(docs, "Issuer")
    assert cert["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer"}
    mwc = by_kind(docs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/{cert['metadata']['name']}"


def test_serve_objects_fit_together() -> None:
    docs = render("serve")
    deploy = by_kind(docs, "Deployment", "keyless")
    spec = deploy["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert deploy["spec"]["replicas"] == 1 and deploy["spec"]["strategy"]["type"] == "Recreate"
    pvc = by_kind(docs, "PersistentVolumeClaim")
    data = next(v for v in spec["volumes"] if v["name"] == "data")
    assert data["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "data")
    assert f"--data-dir={mount['mountPath']}" in container["args"]
    svc = by_kind(docs, "Service", "keyless")
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    https = next(p for p in svc["spec"]["ports"] if p["name"] == "https")
    assert https["port"] == 443 and https["targetPort"] == "https"
    assert f"--listen=0.0.0.0:{ports['https']}" in container["args"]
    # Published URLs come from --public-url: the Service's name on port 443.
    public = f"https://{svc['metadata']['name']}.{NAMESPACE}.svc"
    assert f"--public-url={public}" in container["args"]
    # Probes use the unauthenticated plain-HTTP listener.
    assert f"--metrics-listen=0.0.0.0:{ports['metrics']}" in container["args"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    # The webhook's default authority host is this Service.
    cm = by_kind(render("webhook"), "ConfigMap")
    assert cm["data"]["KEYLESS_AUTHORITY_HOST"] == f"{public}/"

    rendered = render("serve-postgres")
    deployment = by_kind(rendered, "Deployment")
    # Three replicas behind the one Service, spread over nodes, never below two.
    assert deployment["spec"]["replicas"] == 3
    assert by_kind(rendered, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    assert not [d for d in rendered if d["kind"] == "PersistentVolumeClaim"], "replicas share no volume"
    pod = deployment["spec"]["template"]["spec"]
    pg = pod["containers"][0]
    env = {e["name"]: e for e in pg["env"]}
    assert env["KEYLESS_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "keyless-database", "key": "url"}
    # One key-encryption key and one certificate for every replica, from Secrets.
    assert env["KEYLESS_KEK"]["valueFrom"]["secretKeyRef"] == {"name": "keyless-kek", "key": "kek"}
    assert "--tls-cert=/tls/tls.crt" in pg["args"] and "--tls-key=/tls/tls.key" in pg["args"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "keyless-tls"
    assert "emptyDir" in volumes["data"]


def test_webhook_certs_output_validates_and_matches_the_base(tmp_path: Path) -> None:
    printed = [d for d in yaml.safe_load_all(run_keyless("webhook", "certs", "--out-dir", str(tmp_path / "c"))) if d]
    for doc in printed:
        validate(doc)
    secret = by_kind(printed, "Secret")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == "keyless-webhook-tls"
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == (tmp_path / "c" / "tls.crt").read_text()
    mwc = by_kind(printed, "MutatingWebhookConfiguration")
    ca = base64.b64decode(mwc["webhooks"][0]["clientConfig"].pop("caBundle")).decode()
    assert ca == (tmp_path / "c" / "ca.crt").read_text()
    assert mwc == by_kind(render("webhook"), "MutatingWebhookConfiguration")


def test_serviceaccount_manifest_validates() -> None:
    out = run_keyless(
        "serviceaccount", "manifest", "--name", "workload", "--namespace", "apps",
        "--client-id", "0b7a3f55-0000-4000-8000-000000000001", "--token-expiration", "7200",
    )
    (sa,) = [d for d in yaml.safe_load_all(out) if d]
    validate(sa)
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": "0b7a3f55-0000-4000-8000-000000000001",
        "azure.workload.identity/service-account-token-expiration": "7200",
    }


@pytest.mark.parametrize("flags", [
    ("--managed-identity-endpoint",),
    ("--inject-proxy-sidecar", "--proxy-sidecar-port", "9000"),
])
def test_serviceaccount_manifest_pod_template_fragment_validates(flags: tuple[str, ...]) -> None:
    """The mode annotations are printed as comments (the output still applies as is); the
    fragment, uncommented and merged into a Deployment's template, is a valid object."""
    out = run_keyless(
        "serviceaccount", "manifest", "--name", "workload", "--namespace", "apps",
        "--client-id", "0b7a3f55-0000-4000-8000-000000000001", *flags,
    )
    (sa,) = [d for d in yaml.safe_load_all(out) if d]
    validate(sa)
    fragment = yaml.safe_load("\n".join(line[4:] for line in out.splitlines() if line.startswith("#   ")))
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "legacy", "namespace": "apps"},
        "spec": {
            "selector": {"matchLabels": {"app": "legacy"}},
            "template": {
                "metadata": {**fragment["metadata"],
                             "labels": {**fragment["metadata"]["labels"], "app": "legacy"}},
                "spec": {**fragment["spec"], "containers": [{"name": "app", "image": "app:1"}]},
            },
        },
    }
    validate(deployment)
    annotations = fragment["metadata"]["annotations"]
    if "--inject-proxy-sidecar" in flags:
        assert annotations == {"azure.workload.identity/inject-proxy-sidecar": "true",
                               "azure.workload.identity/proxy-sidecar-port": "9000"}
    else:
        assert annotations == {"keyless.io/managed-identity-endpoint": "true"}
    assert fragment["metadata"]["labels"] == {"azure.workload.identity/use": "true"}
    assert fragment["spec"] == {"serviceAccountName": "workload"}
