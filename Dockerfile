# finesift on Ray's official images for the pinned Ray (2.60.0) and Python (3.11).
#
#   docker build -t finesift:latest .                                  # GPU nodes (CUDA)
#   docker build -t finesift:cpu --build-arg RAY_IMAGE=rayproject/ray:2.60.0-py311-cpu \
#     --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu .   # CPU-only nodes
#   docker build -t finesift:vllm --target vllm .                      # serving.backend: vllm
#
# Every node of a cluster runs one of these images (cluster/aws.yaml, cluster/gcp.yaml, the
# KubeRay manifests): Ray, finesift and both bundled models are inside, so jobs start
# without installing anything and without reaching a model hub. The default target (the
# last stage) serves with finesift's own engine; the vllm target adds Ray Serve LLM and
# vLLM for `backend: vllm` (configs/serve_vllm.yaml, cluster/kuberay/rayservice-vllm.yaml).
# Both install the dependencies pinned in pyproject.toml through cluster/install.sh.
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu
# Ray's LLM image: Ray 2.60.0 with its llm extra and the vLLM it pins, on CUDA. The CUDA
# suffix of the tag changes between Ray releases; check Docker Hub's tag list for 2.60.0.
ARG RAY_LLM_IMAGE=rayproject/ray-llm:2.60.0-py311-cu128

# --- source: the project's files, which both targets copy ---------------------------------
FROM scratch AS source
COPY pyproject.toml README.md /finesift/
COPY finesift /finesift/finesift
COPY infra /finesift/infra
COPY quality /finesift/quality
COPY jobs /finesift/jobs
COPY serving /finesift/serving
COPY configs /finesift/configs
COPY cluster /finesift/cluster

# --- vllm: Ray Serve LLM with vLLM (docker build --target vllm) ---------------------------
FROM ${RAY_LLM_IMAGE} AS vllm

WORKDIR /home/ray/finesift

# The image already holds ray[llm]==2.60.0, vLLM and the CUDA torch vLLM pins (2.13.0, the
# version pyproject.toml pins too), so pip keeps them: this adds finesift's dependencies
# and checks that the llm extra's pin is the image's Ray.
COPY --chown=ray:users --from=source /finesift/pyproject.toml /finesift/README.md ./
COPY --chown=ray:users --from=source /finesift/cluster/install.sh /finesift/cluster/requirements.py ./cluster/
RUN sh cluster/install.sh deps vllm
COPY --chown=ray:users --from=source /finesift ./
RUN sh cluster/install.sh code vllm

ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    RAY_DEDUP_LOGS=0 \
    FINESIFT_HOME=/home/ray/.cache/finesift

# The bundled base model, converted at build time: vLLM loads it from this directory (the
# same path on every node), as LLMConfig's model_source.
RUN finesift models --prepare

CMD ["finesift", "--help"]

# --- finesift (default): finesift's own engine, CPU or GPU ---------------------------------
FROM ${RAY_IMAGE} AS finesift

# The Ray images run as the unprivileged user "ray" (group "users") with Python in
# /home/ray/anaconda3; everything below is installed as that user.
WORKDIR /home/ray/finesift

# torch first: pyproject.toml pins torch==2.13.0 and pip then keeps this build. PyPI's
# Linux wheel of torch is the CUDA build; TORCH_INDEX picks another (e.g. .../whl/cpu).
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://pypi.org/simple
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
    && python -c "import torch; assert torch.__version__.startswith('${TORCH_VERSION}')"

# Dependencies before the code, so a code change does not reinstall them: install the
# project's pinned dependencies from pyproject.toml alone (ray[...]==2.60.0 is already in
# the base image and stays), then the bundled base model without its package's deps.
COPY --chown=ray:users --from=source /finesift/pyproject.toml /finesift/README.md ./
COPY --chown=ray:users --from=source /finesift/cluster/install.sh /finesift/cluster/requirements.py ./cluster/
RUN sh cluster/install.sh deps
COPY --chown=ray:users --from=source /finesift ./
RUN sh cluster/install.sh code torch

# Models come from the image or from mounted directories, never from a hub at run time.
# FINESIFT_HOME holds the converted base model; TOKENIZERS_PARALLELISM=false because Ray
# already runs one tokenizer per worker.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_DATASETS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    RAY_DEDUP_LOGS=0 \
    FINESIFT_HOME=/home/ray/.cache/finesift

# Convert the bundled GGUF base model once, at build time, so no node converts it at run
# time (a failure here fails the build rather than the first training job).
RUN finesift models --prepare

# No ENTRYPOINT: KubeRay and the cluster launcher start `ray start` in this image, and
# Ray's image_uri jobs run their own worker command. Run finesift as a command instead:
#   docker run --rm finesift:latest finesift --help
CMD ["finesift", "--help"]
