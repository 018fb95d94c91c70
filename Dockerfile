# syntax=docker/dockerfile:1
# Image Classifier Studio. CPU image by default; a CUDA image with
#   docker build --build-arg TORCH_VARIANT=cu128 -t studio:cuda .
# TORCH_VARIANT names the PyTorch wheel index (cpu, cu126, cu128, ...). The CUDA wheels carry their
# own CUDA libraries; the host needs only the NVIDIA driver and container toolkit.

ARG PYTHON_VERSION=3.11

# ---- build: a virtualenv with every dependency, and the pretrained weights ----------------------
FROM python:${PYTHON_VERSION}-slim AS build
ARG TORCH_VARIANT=cpu
# Pretrained networks whose weights the image carries (the others: Admin -> Networks, or `flask weights
# fetch NAME` at run time). "all" for every network (~310 MB), "" for none (EfficientNet-Lite0 is built in).
ARG PRELOAD_WEIGHTS="resnet18 mobilenet_v3_large"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH \
    WEIGHTS_DIR=/opt/weights
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.txt .
# torch/torchvision first, from the chosen variant's index; the rest from PyPI (torch already satisfied).
RUN grep -E '^(torch|torchvision)==' requirements.txt > /tmp/requirements-torch.txt \
 && pip install --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" -r /tmp/requirements-torch.txt \
 && grep -vE '^(torch|torchvision|pytest|playwright)==' requirements.txt > /tmp/requirements-runtime.txt \
 && pip install -r /tmp/requirements-runtime.txt
# `import app.ml` runs app/__init__.py too, so the whole package comes along (it creates no app).
COPY app app
COPY docker/fetch_weights.py docker/fetch_weights.py
RUN python docker/fetch_weights.py ${PRELOAD_WEIGHTS}

# ---- runtime -------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=app APP_ENV=production \
    STORAGE_DIR=/data/storage WEIGHTS_DIR=/data/weights INSTANCE_PATH=/tmp/studio-instance \
    SERVER_PID_FILE=/tmp/gunicorn.pid \
    PORT=8000
RUN groupadd --system --gid 10001 studio \
 && useradd --system --uid 10001 --gid studio --home-dir /app --shell /usr/sbin/nologin studio \
 && mkdir -p /data/storage /data/weights \
 && chown -R studio:studio /data
COPY --from=build /opt/venv /opt/venv
# The pre-fetched weights seed the weights volume: Docker copies them into an empty named volume on first use.
COPY --from=build --chown=studio:studio /opt/weights /data/weights
WORKDIR /app
COPY --chown=root:root . /app
RUN chmod 0755 /app/docker/entrypoint.sh
USER 10001:10001
VOLUME ["/data/storage", "/data/weights"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
