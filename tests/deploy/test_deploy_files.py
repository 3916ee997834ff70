"""The deployment files pass their validators, and agree with the engine and with each other.

hadolint (Dockerfile), kubernetes-validate --strict (the Kubernetes version we target and the
newest it knows), the KEDA CRD schema (tests/deploy/keda_check.py), checkov (Dockerfile, manifests,
Bicep) with exactly the accepted findings docs/deploy.md lists.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from durable_azstorage.codec.names import TaskHubNames

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "kubernetes"
BICEP = REPO / "infra" / "azure" / "main.bicep"
TARGET_KUBERNETES = "1.33"  # the oldest minor AKS still supports in our docs; 1.37 is the newest known
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
ACCEPTED_CHECKOV = {
    "CKV_DOCKER_7",
    "CKV_K8S_43",
    "CKV_K8S_35",
    "CKV_AZURE_35",
    "CKV_AZURE_59",
    "CKV_AZURE_206",
    "CKV_AZURE_43",
}

pytestmark = pytest.mark.timeout(900)  # the first run installs the validators


def run(args: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True, timeout=600, **kwargs)


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") != "Kustomization":
                found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def test_dockerfile_passes_hadolint(tools_bin: Path) -> None:
    result = run([tools_bin / "hadolint", "--failure-threshold", "info", "Dockerfile"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("version", [TARGET_KUBERNETES, "1.37"])
def test_manifests_pass_kubernetes_validate_strict(tools_bin: Path, version: str) -> None:
    result = run([tools_bin / "kubernetes-validate", "--strict", "-k", version, *MANIFESTS])
    assert result.returncode == 0, result.stdout
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.startswith(("ERROR", "FATAL"))]
    # Only the KEDA kinds lack a built-in schema; the next test checks them against KEDA's.
    unknown = [line for line in lines if line.startswith("WARN")]
    assert all(re.search(r"kind (ScaledObject|TriggerAuthentication) with api version keda\.sh", w) for w in unknown)
    assert sum("passed for resource" in line for line in lines) == len(MANIFESTS) - len(unknown)


def test_keda_resources_match_the_keda_crd_schema(tools_bin: Path) -> None:
    result = run([tools_bin / "python", REPO / "tests" / "deploy" / "keda_check.py", *MANIFESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    passed = [line for line in result.stdout.splitlines() if "passed against the KEDA CRD schema" in line]
    assert len(passed) == 3  # the ScaledObject and both TriggerAuthentications


def test_keda_check_rejects_an_unknown_field(tools_bin: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((K8S / "scaledobject.yaml").read_text().replace("  minReplicaCount: 1", "  minReplicas: 1"))
    result = run([tools_bin / "python", REPO / "tests" / "deploy" / "keda_check.py", bad])
    assert result.returncode == 1
    assert "unknown field spec.minReplicas" in result.stdout


def test_checkov_finds_nothing_but_the_accepted_findings(tools_bin: Path, tmp_path: Path) -> None:
    # Offline: no guideline look-ups, no policy downloads; its caches go to a temporary HOME.
    env = {"BC_SKIP_MAPPING": "TRUE", "PATH": f"{tools_bin}:/usr/bin:/bin", "HOME": str(tmp_path)}
    result = run(
        [tools_bin / "checkov", "-d", "infra", "--framework", "kubernetes", "bicep", "--skip-download",
         "-o", "json"], env=env,
    )  # fmt: skip
    dockerfile = run(
        [tools_bin / "checkov", "-f", "Dockerfile", "--framework", "dockerfile", "--skip-download", "-o", "json"],
        env=env,
    )
    reports: list[dict[str, Any]] = []
    for output in (result.stdout, dockerfile.stdout):
        parsed = json.loads(output)
        reports.extend(parsed if isinstance(parsed, list) else [parsed])
    failed = [(c["check_id"], c["file_path"]) for r in reports for c in r["results"].get("failed_checks", [])]
    skipped = {c["check_id"] for r in reports for c in r["results"].get("skipped_checks", [])}
    frameworks = {r["check_type"] for r in reports}
    assert failed == [], failed
    assert {"kubernetes", "bicep", "dockerfile"} <= frameworks
    assert skipped == ACCEPTED_CHECKOV
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert all(check in docs for check in ACCEPTED_CHECKOV)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}


def test_scaled_object_watches_the_hubs_queues_and_stops_at_the_partition_count() -> None:
    found = resources()
    config = found[("ConfigMap", "durable-worker")]["data"]
    names = TaskHubNames(config["DURABLE_TASK_HUB"], int(config["PARTITION_COUNT"]))
    scaled = found[("ScaledObject", "durable-worker")]["spec"]
    queues = [t["metadata"]["queueName"] for t in scaled["triggers"] if t["type"] == "azure-queue"]
    assert sorted(queues) == sorted([names.work_item_queue, *names.control_queues])
    assert scaled["maxReplicaCount"] == names.partition_count
    assert scaled["minReplicaCount"] == 1  # timers are invisible messages: a hub at zero never wakes
    assert scaled["scaleTargetRef"]["name"] == "durable-worker"
    accounts = {t["metadata"]["accountName"] for t in scaled["triggers"]}
    assert accounts == {config["AzureWebJobsStorage__accountName"]}


def test_deployment_grace_period_covers_the_drain_and_probes_hit_the_health_endpoints() -> None:
    deployment = resources()[("Deployment", "durable-worker")]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    drain = float(args[args.index("--drain-timeout") + 1])
    assert pod["terminationGracePeriodSeconds"] > drain
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"--task-hub-name", "--partition-count", "--worker-id"} <= set(args)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_bicep_uses_identity_settings_the_engine_reads_and_no_shared_keys() -> None:
    text = BICEP.read_text()
    assert "allowSharedKeyAccess: false" in text
    for setting in ("AzureWebJobsStorage__accountName", "AzureWebJobsStorage__credential",
                    "AzureWebJobsStorage__clientId"):
        assert f"name: '{setting}'" in text
    for role in ("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
                 "ba92f5b4-2d11-453d-a403-e96b0029c9fe"):
        assert role in text  # Queue, Table, Blob Data Contributor
    assert "maxReplicas: partitionCount" in text
    assert "azureQueue:" in text and "identity: identity.id" in text
