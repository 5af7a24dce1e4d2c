"""The vLLM backend without vLLM: the arguments built for Ray Serve LLM, checked against
Ray's own classes where they import without vLLM (LLMConfig) and against a recorded schema
(tests/serving/data/ray_serve_llm.json) where they do not; the recording itself is
compared with Ray's installed source. The missing-extra error. Ranks from manifests.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import sys
import types
import uuid
from pathlib import Path

import pytest

from infra.config import ConfigError, load_config
from serving import llm_app
from serving.config import VLLM_LORA_RANKS, ServeConfig, VllmConfig

SCHEMA = json.loads((Path(__file__).parent / "data" / "ray_serve_llm.json").read_text())
RAY_LLM = Path(importlib.util.find_spec("ray").origin).parent / "llm" / "_internal" / "serve"
STORE = "s3://my-bucket/finesift/adapters"


def vllm_cfg(*overrides: str) -> ServeConfig:
    return load_config(
        ServeConfig,
        None,
        [
            "backend=vllm",
            f"adapters_dir={STORE}",
            "vllm.accelerator_type=L4",
            "scaling.min_replicas=1",
            "scaling.max_replicas=3",
            "scaling.target_ongoing_requests=16",
            "scaling.max_ongoing_requests=64",
            "max_adapters_per_replica=6",
            *overrides,
        ],
    )


# --- the LLMConfig, through Ray's own class ------------------------------------------------


def test_llm_config_is_what_rays_llmconfig_reads():
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    config = LLMConfig.model_validate(llm_app.llm_config(vllm_cfg(), "/models/smol", 32))

    assert config.model_id == "base"  # the served name: adapters are base:NAME
    assert config.model_loading_config.model_source == "/models/smol"
    assert config.lora_config.dynamic_lora_loading_path == STORE
    assert config.lora_config.max_num_adapters_per_replica == 6
    assert config.multiplex_config().max_num_models_per_replica == 6
    assert config.engine_kwargs["enable_lora"] is True
    assert config.engine_kwargs["max_lora_rank"] == 32
    assert config.engine_kwargs["max_loras"] == 6
    assert config.engine_kwargs["trust_remote_code"] is False
    assert "max_model_len" not in config.engine_kwargs  # 0: the model's own
    assert config.accelerator_type == "L4" and config.accelerator_config.kind == "gpu"
    autoscaling = config.deployment_config["autoscaling_config"]
    assert (autoscaling["min_replicas"], autoscaling["max_replicas"]) == (1, 3)
    assert autoscaling["target_ongoing_requests"] == 16
    assert config.deployment_config["max_ongoing_requests"] == 64
    assert config.runtime_env["env_vars"]["HF_HUB_OFFLINE"] == "1"


def test_engine_settings_and_extra_engine_kwargs_reach_vllm():
    cfg = vllm_cfg(
        "vllm.tensor_parallel_size=2",
        "vllm.max_model_len=4096",
        "vllm.gpu_memory_utilization=0.8",
        "dtype=bfloat16",
        "vllm.engine_kwargs={enable_prefix_caching: true}",
    )
    kwargs = llm_app.llm_config(cfg, "/m", 16)["engine_kwargs"]
    assert kwargs["tensor_parallel_size"] == 2 and kwargs["max_model_len"] == 4096
    assert kwargs["gpu_memory_utilization"] == 0.8 and kwargs["dtype"] == "bfloat16"
    assert kwargs["enable_prefix_caching"] is True


def test_no_accelerator_type_takes_any_gpu():
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    cfg = vllm_cfg("vllm.accelerator_type=null")
    config = LLMConfig.model_validate(llm_app.llm_config(cfg, "/m", 16))
    assert config.accelerator_type is None and config.accelerator_config.kind == "gpu"


def test_values_ray_refuses_are_one_line_config_errors():
    args = llm_app.serving_args(vllm_cfg("vllm.accelerator_type=A10X"), "/m", 16, None)
    with pytest.raises(ConfigError, match="refuses accelerator_type: .*A10X"):
        llm_app.check_with_ray(args)
    llm_app.check_with_ray(llm_app.serving_args(vllm_cfg(), "/m", 16, None))


# --- LLMServingArgs and the ingress, against the recorded schema ----------------------------


def test_serving_args_fit_the_recorded_serving_args_schema():
    args = llm_app.serving_args(vllm_cfg(), "/m", 16, "ab" * 32)
    assert set(args) <= set(SCHEMA["LLMServingArgs"])
    assert set(args["ingress_cls_config"]) <= set(SCHEMA["IngressClsConfig"])
    assert args["ingress_cls_config"]["ingress_cls"] == "serving.llm_ingress:FinesiftLLMIngress"
    assert args["ingress_cls_config"]["ingress_extra_kwargs"] == {"key_hash": "ab" * 32}
    engine_kwargs = set(args["llm_configs"][0]["engine_kwargs"])
    assert engine_kwargs <= set(SCHEMA["vllm_engine_args"])
    assert tuple(SCHEMA["vllm_max_lora_ranks"]) == VLLM_LORA_RANKS


def _model_fields(tree: ast.Module, name: str) -> list[str]:
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)]


def _signatures(tree: ast.Module, name: str) -> dict[str, dict[str, list[str]]]:
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return {
        f.name: {"args": [a.arg for a in f.args.args], "kwonly": [a.arg for a in f.args.kwonlyargs]}
        for f in cls.body
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_the_recorded_schema_is_what_the_installed_ray_has():
    import ray

    assert ray.__version__ == SCHEMA["ray"]
    builder = ast.parse((RAY_LLM / "core" / "ingress" / "builder.py").read_text())
    assert _model_fields(builder, "LLMServingArgs") == SCHEMA["LLMServingArgs"]
    assert _model_fields(builder, "IngressClsConfig") == SCHEMA["IngressClsConfig"]
    ingress = ast.parse((RAY_LLM / "core" / "ingress" / "ingress.py").read_text())
    methods = _signatures(ingress, "OpenAiIngress")
    recorded = SCHEMA["OpenAiIngress"]
    assert methods["__init__"] == recorded["__init__"]
    assert methods["_get_response"] == recorded["_get_response"]
    (endpoints,) = [
        n.value
        for n in ingress.body
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "DEFAULT_ENDPOINTS"
    ]
    assert [k.value for k in endpoints.keys] == list(recorded["routes"])
    for route, params in recorded["routes"].items():
        assert methods[route]["args"] == params, route
    # Ray's LoRA store check and its base_model_id:lora_id naming, which serving relies on.
    lora_utils = (RAY_LLM.parent / "common" / "utils" / "lora_utils.py").read_text()
    assert 'f"{base_model_id}:{subfolder}"' in lora_utils


def test_engine_args_exist_in_vllm_when_it_is_installed():
    pytest.importorskip("vllm")
    import dataclasses as dc

    from vllm.engine.arg_utils import AsyncEngineArgs

    assert set(SCHEMA["vllm_engine_args"]) <= {f.name for f in dc.fields(AsyncEngineArgs)}


# --- the missing extra, the config checks ---------------------------------------------------


def test_asking_for_vllm_without_it_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    with pytest.raises(ConfigError) as caught:
        llm_app.require_vllm()
    assert "pip install 'finesift[vllm]'" in str(caught.value) and "\n" not in str(caught.value)


def test_serve_command_with_the_vllm_backend_and_no_vllm_fails_before_ray(monkeypatch, capsys):
    import infra.ray_env
    from jobs.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a)
    )
    started = []
    monkeypatch.setattr(infra.ray_env, "init_ray", lambda: started.append(1))
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--backend", "vllm", "--adapters-dir", STORE])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: backend vllm needs vLLM") and "finesift[vllm]" in line
    assert not started


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("backend=tgi", "backend must be one of"),
        ("adapters_dir=adapters", "s3://, gs://"),
        ("adapters_dir=file:///shared/adapters", "s3://, gs://"),
        ("vllm.max_lora_rank=12", "max_lora_rank"),
        ("vllm.tensor_parallel_size=0", "tensor_parallel_size"),
        ("vllm.gpu_memory_utilization=1.5", "gpu_memory_utilization"),
    ],
)
def test_bad_vllm_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        vllm_cfg(override)


# --- max_lora_rank from the adapters' manifests -------------------------------------------


@pytest.fixture
def memory_store():
    fsspec = pytest.importorskip("fsspec")
    root = f"/finesift-{uuid.uuid4().hex[:8]}"
    yield f"memory://{root}/adapters"
    memory = fsspec.filesystem("memory")
    if memory.exists(root):
        memory.rm(root, recursive=True)


def push(tmp_path: Path, store: str, name: str, config: dict, manifest: dict | None) -> None:
    from infra.adapter_store import push_adapter

    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "adapter_model.safetensors").write_bytes(b"w")
    if manifest is not None:
        (folder / "finesift.json").write_text(json.dumps(manifest))
    push_adapter(folder, store)


def test_max_lora_rank_comes_from_the_adapters_and_is_rounded_up(tmp_path, memory_store):
    assert llm_app.lora_rank(memory_store, 0) == llm_app.DEFAULT_LORA_RANK  # empty store
    push(tmp_path, memory_store, "small", {"r": 8}, {"config": {"lora": {"r": 8}}})
    assert llm_app.lora_rank(memory_store, 0) == 8
    push(tmp_path, memory_store, "patterned", {"r": 8, "rank_pattern": {"q_proj": 24}}, None)
    assert llm_app.lora_rank(memory_store, 0) == 32  # 24 rounded up to what vLLM supports
    assert llm_app.lora_rank(memory_store, 64) == 64
    with pytest.raises(ConfigError, match=r"max_lora_rank=16 .* patterned \(r=24\)"):
        llm_app.lora_rank(memory_store, 16)
    push(tmp_path, memory_store, "huge", {"r": 1024}, None)
    with pytest.raises(ConfigError, match="above vLLM's largest"):
        llm_app.lora_rank(memory_store, 0)


def test_adapter_rank_reads_config_and_manifest():
    assert llm_app.adapter_rank({"r": 16}) == 16
    assert llm_app.adapter_rank({}, {"config": {"lora": {"r": 4}}}) == 4
    assert llm_app.adapter_rank({"r": True}) == 0  # a bool is no rank


# --- the whole build, with Ray's builder standing in ---------------------------------------


def test_build_resolves_the_model_reads_ranks_and_calls_build_openai_app(
    monkeypatch, tiny_model_dir
):
    seen = {}
    fake = types.ModuleType("ray.serve.llm")
    fake.build_openai_app = lambda args: seen.setdefault("args", args) and "app"
    monkeypatch.setitem(sys.modules, "ray.serve.llm", fake)
    monkeypatch.setattr(llm_app, "require_vllm", lambda: None)
    monkeypatch.setattr(llm_app, "lora_rank", lambda store, configured: 64)
    monkeypatch.setenv("FINESIFT_API_KEY", "secret")
    from serving.app import build_application
    from serving.auth import hash_key

    cfg = dataclasses.replace(vllm_cfg(), base_model=str(tiny_model_dir), vllm=VllmConfig())
    assert build_application(cfg) == "app"
    (config,) = seen["args"]["llm_configs"]
    assert config["model_loading_config"]["model_source"] == str(tiny_model_dir)
    assert config["engine_kwargs"]["max_lora_rank"] == 64
    extra = seen["args"]["ingress_cls_config"]["ingress_extra_kwargs"]
    assert extra == {"key_hash": hash_key("secret")}  # only the hash leaves this process


def test_serve_help_names_the_backend_and_its_extra():
    from typer.testing import CliRunner

    from jobs.cli import app

    shown = CliRunner().invoke(app, ["serve", "--help"]).output
    assert "--backend" in shown and "finesift[vllm]" in shown  # not eaten as rich markup
