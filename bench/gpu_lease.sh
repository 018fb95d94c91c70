#!/usr/bin/env bash
# Every CUDA check in one call of the lent GPU machine (its device time is short and counted from the start).
# Expects, carried beside the tree: .gpu/whl/ (the EfficientNet-Lite0 weights wheel; the machine has torch,
# torchvision, onnx, onnxruntime and pillow but no web stack) and .gpu/data/hymenoptera/train (real photos).
# Logs land in $OUT (or ./gpu-out). Each step has its own time limit so one hang cannot eat the lease.
set -u
OUT=${OUT:-gpu-out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 WEIGHTS_DIR=/tmp/weights
nvidia-smi -L; python3 -c "import torch, torchvision, onnxruntime as o; print(torch.__version__, torchvision.__version__, o.__version__, o.get_available_providers())"
step() { local limit=$1 name=$2; shift 2; echo "=== $name"; timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "rc=$?" >> "$OUT/$name.log"; tail -n 40 "$OUT/$name.log"; }
step ${CHECK_S:-200} gpu_check python3 bench/gpu_check.py
[ -n "${SKIP_FEATURES:-}" ] || step ${FEATURES_S:-120} gpu_features python3 bench/gpu_features.py cuda .gpu/data/hymenoptera
step ${PROFILE_S:-70} gpu_serving_profile python3 bench/gpu_serving_profile.py
step ${FINETUNE_S:-90} gpu_finetune python3 bench/gpu_finetune.py .gpu/data/hymenoptera/train
