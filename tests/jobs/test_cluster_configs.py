"""Every YAML under cluster/ loads and has what Ray's cluster launcher and KubeRay require.

Unit tier: nothing starts; Ray's own schema check validates the launcher configs, the
runtime_env goes through Ray's RuntimeEnv validation, and the commands the manifests run
are parsed by the current finesift CLI, so a renamed option breaks this test, not a cluster.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
YAML_FILES = sorted(CLUSTER.rglob("*.yaml"))
LAUNCHER_FILES = [p for p in YAML_FILES if p.parent == CLUSTER and p.name != "runtime_env.yaml"]
KUBERAY_KINDS = {"RayCluster", "RayJob", "RayService"}


def pinned(name: str) -> str:
    """The exact version pyproject.toml pins for a dependency."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for dep in deps:
        match = re.fullmatch(rf"{re.escape(name)}(\[[^\]]*\])?==([\w.]+)", dep)
        if match:
            return match.group(2)
    raise AssertionError(f"{name} is not pinned in pyproject.toml")


RAY_VERSION = pinned("ray")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def kuberay_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in YAML_FILES:
        for doc in documents(path):
            if doc.get("kind") in KUBERAY_KINDS:
                found.append((f"{path.relative_to(ROOT)}:{doc['kind']}", doc))
    return found


def cluster_specs(doc: dict[str, Any]) -> dict[str, Any]:
    """The RayClusterSpec inside a RayCluster, RayJob or RayService."""
    spec = doc["spec"]
    return {
        "RayCluster": spec,
        "RayJob": spec.get("rayClusterSpec"),
        "RayService": spec.get("rayClusterConfig"),
    }[doc["kind"]]


def gpus(group: dict[str, Any]) -> int:
    total = 0
    for container in group["template"]["spec"]["containers"]:
        limits = container.get("resources", {}).get("limits", {})
        total += int(limits.get("nvidia.com/gpu", 0))
    return total


def test_every_yaml_is_recognised():
    assert LAUNCHER_FILES and YAML_FILES
    for path in YAML_FILES:
        docs = documents(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            known = (
                "provider" in doc
                or doc.get("kind") in KUBERAY_KINDS
                or (doc.get("apiVersion"), doc.get("kind")) == ("v1", "PersistentVolumeClaim")
                or path.name == "runtime_env.yaml"
            )
            assert known, f"{path}: a document no test here checks; add checks for it"


# ---------------------------------------------------------------------------
# ray up: cluster/aws.yaml, cluster/gcp.yaml
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_config_passes_rays_schema(path):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(path.read_text())
    # What `ray up` does first: merge the provider's defaults, then check ray-schema.json.
    validate_config(prepare_config(config))
    for key in (
        "cluster_name",
        "provider",
        "available_node_types",
        "head_node_type",
        "idle_timeout_minutes",
        "max_workers",
    ):
        assert key in config, f"{path.name} lacks {key}"
    assert config["provider"]["type"] == path.stem
    assert config["idle_timeout_minutes"] > 0


@pytest.mark.parametrize("path", LAUNCHER_FILES, ids=lambda p: p.name)
def test_launcher_node_types_scale_gpus_from_zero(path):
    config = yaml.safe_load(path.read_text())
    types = config["available_node_types"]
    head = config["head_node_type"]
    assert head in types
    assert types[head]["resources"].get("GPU", 0) == 0, "the head is a CPU node"
    workers = {name: t for name, t in types.items() if name != head}
    for name, node_type in workers.items():
        for key in ("resources", "min_workers", "max_workers", "node_config"):
            assert key in node_type, f"{path.name}: node type {name} lacks {key}"
        assert node_type["min_workers"] == 0, f"{name} must scale from zero"
        assert 1 <= node_type["max_workers"] <= config["max_workers"]
    gpu_counts = sorted(t["resources"].get("GPU", 0) for t in workers.values())
    assert gpu_counts == [0, 1, 8], "a CPU worker type, a 1-GPU type and an 8-GPU type"
    # Every node enforces token auth, with the token copied from the user's machine.
    start = " ".join(config["head_start_ray_commands"] + config["worker_start_ray_commands"])
    assert start.count("RAY_AUTH_MODE=token") == 2
    assert "/home/ray/.ray/auth_token" in config["file_mounts"]
    assert config["docker"]["image"]


def test_aws_gpu_types_are_a10g_and_a100():
    types = yaml.safe_load((CLUSTER / "aws.yaml").read_text())["available_node_types"]
    by_gpus = {t["resources"].get("GPU", 0): t for t in types.values()}
    assert by_gpus[1]["node_config"]["InstanceType"].startswith("g5.")  # 1x A10G
    assert by_gpus[1]["resources"]["accelerator_type:A10G"] == 1
    assert by_gpus[8]["node_config"]["InstanceType"].startswith("p4d.")  # 8x A100
    assert by_gpus[8]["resources"]["accelerator_type:A100"] == 1
    amis = {t["node_config"]["ImageId"] for t in types.values()}
    assert len(amis) == 1, "one AMI for every node type (a YAML anchor)"


def test_gcp_gpu_types_are_l4_and_a100():
    types = yaml.safe_load((CLUSTER / "gcp.yaml").read_text())["available_node_types"]
    by_gpus = {t["resources"].get("GPU", 0): t for t in types.values()}
    assert by_gpus[1]["node_config"]["machineType"].startswith("g2-")  # 1x L4 (no A10G on GCP)
    assert by_gpus[8]["node_config"]["machineType"] == "a2-highgpu-8g"  # 8x A100
    for node_type in (by_gpus[1], by_gpus[8]):
        assert {"onHostMaintenance": "TERMINATE"} in node_type["node_config"]["scheduling"]


# ---------------------------------------------------------------------------
# KubeRay: cluster/kuberay/*.yaml
# ---------------------------------------------------------------------------


def test_kuberay_has_cluster_job_and_both_services():
    kinds = sorted(doc["kind"] for _, doc in kuberay_documents())
    assert kinds == ["RayCluster", "RayJob", "RayService", "RayService"]


@pytest.mark.parametrize(
    "name,doc", kuberay_documents(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_kuberay_cluster_spec(name, doc):
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["metadata"]["name"]
    spec = cluster_specs(doc)
    assert spec is not None, f"{name} has no cluster spec"
    assert spec["rayVersion"] == RAY_VERSION, "the Ray version pinned in pyproject.toml"
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["authOptions"]["mode"] == "token"
    head = spec["headGroupSpec"]
    assert "rayStartParams" in head
    head_containers = head["template"]["spec"]["containers"]
    assert head_containers[0]["image"]
    assert any(p["containerPort"] == 8265 for p in head_containers[0]["ports"])
    groups = spec["workerGroupSpecs"]
    assert groups
    for group in groups:
        for key in ("groupName", "minReplicas", "maxReplicas", "rayStartParams", "template"):
            assert key in group, f"{name}: worker group lacks {key}"
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
        assert group["template"]["spec"]["containers"][0]["image"]
        if gpus(group):
            assert group["minReplicas"] == 0, f"{group['groupName']}: GPUs scale from zero"
    assert any(gpus(g) == 1 for g in groups)
    volumes = [
        v["persistentVolumeClaim"]["claimName"]
        for v in head["template"]["spec"].get("volumes", [])
        if "persistentVolumeClaim" in v
    ]
    # A manifest that reads or writes /mnt/finesift mounts the claim of kuberay/storage.yaml
    # there; one that does not (adapters in object storage) needs no shared volume.
    uses_shared = "/mnt/finesift" in yaml.safe_dump(doc)
    assert volumes == (["finesift-shared"] if uses_shared else []), name


def test_rayjob_runs_the_train_command_with_valid_options():
    import click
    import typer

    from jobs.cli.training import train_command

    doc = dict(kuberay_documents())["cluster/kuberay/rayjob-train.yaml:RayJob"]
    spec = doc["spec"]
    argv = shlex.split(spec["entrypoint"])
    assert argv[:4] == ["python", "-m", "jobs.cli", "train"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["env_vars"]["HF_HUB_OFFLINE"] == "1"
    # The options must exist in today's `finesift train`: parse them with its click command.
    app = typer.Typer()
    app.command()(train_command)
    command = typer.main.get_command(app)
    try:
        ctx = command.make_context("train", argv[4:])
    except click.UsageError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"rayjob-train.yaml entrypoint does not parse: {exc}")
    assert ctx.params["scaling__use_gpu"] is True
    assert ctx.params["data"].startswith("/mnt/finesift/")
    assert ctx.params["scaling__storage_path"].startswith("/mnt/finesift/")


def test_rayservice_serve_config_builds_a_valid_serve_config():
    from infra.config import load_config
    from serving.config import ServeConfig

    doc = dict(kuberay_documents())["cluster/kuberay/rayservice.yaml:RayService"]
    serve_config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    apps = serve_config["applications"]
    assert len(apps) == 1
    app = apps[0]
    assert app["name"] and app["route_prefix"] == "/"
    module, _, attr = app["import_path"].partition(":")
    source = ROOT.joinpath(*module.split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())
    assert attr in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, (
        f"{app['import_path']} is not a function in {source}"
    )
    # build_app turns args into ServeConfig overrides; they must all be valid.
    cfg = load_config(ServeConfig, None, [f"{k}={v}" for k, v in app["args"].items()])
    assert cfg.scaling.max_replicas > cfg.scaling.min_replicas >= 1  # autoscaling range
    assert cfg.scaling.num_gpus == 1
    assert cfg.adapters_dir.startswith("/mnt/finesift/")
    assert serve_config["http_options"]["host"] == "0.0.0.0"
    # Serve's own deployment options must say what the args say, or one silently wins.
    deployments = {d["name"]: d for d in app["deployments"]}
    generator = deployments["Generator"]
    autoscaling = generator["autoscaling_config"]
    assert autoscaling["min_replicas"] == cfg.scaling.min_replicas
    assert autoscaling["max_replicas"] == cfg.scaling.max_replicas
    assert autoscaling["target_ongoing_requests"] == cfg.scaling.target_ongoing_requests
    assert generator["max_ongoing_requests"] == cfg.scaling.max_ongoing_requests
    assert generator["ray_actor_options"] == {
        "num_cpus": cfg.scaling.num_cpus,
        "num_gpus": cfg.scaling.num_gpus,
    }
    assert deployments["OpenAIIngress"]["ray_actor_options"]["num_cpus"] == 0


def test_rayservice_vllm_builds_rays_llm_config_for_its_gpus():
    from infra.config import load_config
    from serving.config import LORA_STORE_SCHEMES, ServeConfig
    from serving.llm_app import check_with_ray, serving_args

    doc = dict(kuberay_documents())["cluster/kuberay/rayservice-vllm.yaml:RayService"]
    serve_config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    (app,) = serve_config["applications"]
    assert app["import_path"] == "serving.app:build_app" and app["route_prefix"] == "/"
    assert "deployments" not in app, "Ray Serve LLM names its own deployments"
    cfg = load_config(ServeConfig, None, [f"{k}={v}" for k, v in app["args"].items()])
    assert cfg.backend == "vllm" and cfg.adapters_dir.startswith(LORA_STORE_SCHEMES)
    assert cfg.scaling.max_replicas > cfg.scaling.min_replicas >= 1
    check_with_ray(serving_args(cfg, "/home/ray/.cache/finesift/models/x", 16, None))
    spec = cluster_specs(doc)
    (group,) = [g for g in spec["workerGroupSpecs"] if gpus(g)]
    # The GPU type the replicas ask Ray for is the one the GPU pods are placed on, and the
    # group can hold every replica's GPUs.
    product = group["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"]
    assert product == f"NVIDIA-{cfg.vllm.accelerator_type}"
    # ...and the autoscaler knows the group has it (read as KubeRay's autoscaler reads it),
    # or it never starts a pod for a replica that asks for that accelerator type.
    from ray.autoscaler._private.kuberay.autoscaling_config import _get_custom_resources

    custom = _get_custom_resources({}, group["rayStartParams"], group["groupName"])
    assert custom == {f"accelerator_type:{cfg.vllm.accelerator_type}": 1}
    replica_gpus = cfg.scaling.max_replicas * cfg.vllm.tensor_parallel_size
    assert group["maxReplicas"] * gpus(group) >= replica_gpus
    images = [
        c["image"]
        for template in [spec["headGroupSpec"]["template"], group["template"]]
        for c in template["spec"]["containers"]
    ]
    assert all(image.endswith(":vllm") for image in images), "the Dockerfile's vllm target"
    assert serve_config["http_options"]["host"] == "0.0.0.0"


def test_storage_claim_is_read_write_many():
    (doc,) = documents(CLUSTER / "kuberay" / "storage.yaml")
    assert doc["metadata"]["name"] == "finesift-shared"
    assert doc["spec"]["accessModes"] == ["ReadWriteMany"]


# ---------------------------------------------------------------------------
# runtime_env.yaml, Dockerfile, .dockerignore
# ---------------------------------------------------------------------------


def test_runtime_env_is_valid_for_ray():
    from ray.runtime_env import RuntimeEnv

    data = yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text())
    RuntimeEnv(**data)  # Ray's validation of every field
    assert data["working_dir"] == "."
    assert {".venv", ".git", "data", "runs", "adapters"} <= set(data["excludes"])
    assert all(isinstance(v, str) for v in data["env_vars"].values())
    assert data["env_vars"]["HF_HUB_OFFLINE"] == "1"


def dockerfile_stages() -> dict[str, str]:
    """The Dockerfile's stages by name (text from each FROM to the next)."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^(?=FROM )", text, flags=re.M)[1:]
    return {re.match(r"FROM \S+ AS (\S+)", part).group(1): part for part in parts}


def test_dockerfile_uses_the_pinned_ray_image_and_offline_hub():
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^ARG RAY_IMAGE=rayproject/ray:([\d.]+)-py(\d)(\d+)-gpu$", text, re.M)
    assert match, "the base image is Ray's official GPU image"
    assert match.group(1) == RAY_VERSION
    python = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == f">={match.group(2)}.{match.group(3)}"
    stages = dockerfile_stages()
    assert list(stages)[-1] == "finesift", "the default target (the last stage)"
    assert stages["finesift"].startswith("FROM ${RAY_IMAGE} AS finesift")
    assert f"ARG TORCH_VERSION={pinned('torch')}" in stages["finesift"]
    assert stages["source"].startswith("FROM scratch AS source"), "the files both targets copy"
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for package in {p.rstrip("*") for p in packages}:  # every package pip installs
        assert f"COPY {package} /finesift/{package}\n" in stages["source"], package
    for stage in (stages["finesift"], stages["vllm"]):
        assert "COPY --chown=ray:users --from=source /finesift ./" in stage
        for var in ("HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1"):
            assert var in stage
        assert "finesift models --prepare" in stage
    assert not re.search(r"^ENTRYPOINT", text, re.M), "KubeRay and ray up need the image's shell"


def test_dockerfile_vllm_target_is_rays_llm_image_with_the_pinned_extra():
    text = (ROOT / "Dockerfile").read_text()
    match = re.search(
        r"^ARG RAY_LLM_IMAGE=rayproject/ray-llm:([\d.]+)-py(\d)(\d+)-cu\d+$", text, re.M
    )
    assert match and match.group(1) == RAY_VERSION, "Ray's LLM image at the Ray pin"
    vllm = dockerfile_stages()["vllm"]
    assert vllm.startswith("FROM ${RAY_LLM_IMAGE} AS vllm")
    # Both targets install from pyproject.toml's pins, through the same script; only the
    # vllm target adds the extra.
    assert "RUN sh cluster/install.sh deps vllm\n" in vllm
    assert "RUN sh cluster/install.sh deps\n" in dockerfile_stages()["finesift"]
    script = (ROOT / "cluster" / "install.sh").read_text()
    assert 'python cluster/requirements.py "$@" > /tmp/requirements.txt' in script
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert extras["vllm"] == [f"ray[llm]=={RAY_VERSION}"], "the llm extra at the Ray pin"


def test_requirements_script_prints_the_pins_and_extras():
    import subprocess
    import sys

    script = ROOT / "cluster" / "requirements.py"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def run(*extras: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(script), *extras, "--pyproject", str(ROOT / "pyproject.toml")],
            capture_output=True,
            text=True,
        )

    assert run().stdout.splitlines() == project["dependencies"]
    assert run("vllm").stdout.splitlines() == [*project["dependencies"], f"ray[llm]=={RAY_VERSION}"]
    assert run("--ray-version").stdout == f"{RAY_VERSION}\n"  # what install.sh checks
    refused = run("nope")
    assert refused.returncode != 0 and "unknown extra" in refused.stderr
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "data", "runs", "adapters"} <= set(ignored)
