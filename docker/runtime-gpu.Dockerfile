# livedenoise GPU runtime: serves exported ONNX models with ONNX Runtime (CUDA / TensorRT providers).
# Torch-free on purpose (design invariant 4): training runs in docker/trainer.Dockerfile.
#
#   docker build -f docker/runtime-gpu.Dockerfile -t livedenoise:gpu .
#   docker run --gpus 1 -p 5555:5555 -p 5556:5556 -p 8000:8000 -e LIVEDENOISE_API_TOKEN=... \
#       -v livedenoise-home:/var/lib/livedenoise livedenoise:gpu --model /var/lib/livedenoise/model.onnx
#
# Versions go together (onnxruntime.ai TensorRT EP requirements): ORT 1.22 <-> TensorRT 10.9 <-> CUDA 12.0-12.8, cuDNN 9.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG ORT_GPU_VERSION=1.22.0
ARG TENSORRT_VERSION=10.9.0.34

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/livedenoise \
    PATH=/opt/livedenoise/bin:$PATH

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/livedenoise

WORKDIR /src
COPY pyproject.toml README.md ./
COPY clients ./clients
COPY server ./server
COPY models ./models

# `.[server]` brings the CPU `onnxruntime`; it must never sit beside `onnxruntime-gpu` (both own the
# `onnxruntime` module), so it is removed before the GPU build goes in, in the same layer.
RUN pip install ".[server,zarr]" \
 && pip uninstall -y onnxruntime \
 && pip install "onnxruntime-gpu==${ORT_GPU_VERSION}" "tensorrt-cu12==${TENSORRT_VERSION}" \
 && python -c "import onnxruntime as ort; p = ort.get_available_providers(); assert 'CUDAExecutionProvider' in p and 'TensorrtExecutionProvider' in p, p" \
 && ! pip show onnxruntime >/dev/null 2>&1 \
 && ! python -c "import torch" 2>/dev/null \
 && rm -rf /src

# The TensorRT execution provider loads libnvinfer from the pip wheels' library folder.
RUN echo "$(python -c 'import os, tensorrt_libs; print(os.path.dirname(tensorrt_libs.__file__))')" > /etc/ld.so.conf.d/tensorrt.conf \
 && ldconfig

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/livedenoise --shell /usr/sbin/nologin livedenoise \
 && mkdir -p /var/lib/livedenoise /data \
 && chown livedenoise:livedenoise /var/lib/livedenoise /data

ENV LIVEDENOISE_HOME=/var/lib/livedenoise \
    LIVEDENOISE_DATA_ROOT=/data \
    LIVEDENOISE_PROVIDER=cuda
VOLUME ["/var/lib/livedenoise"]
WORKDIR /var/lib/livedenoise
USER livedenoise

# 5555 frames/1 (ROUTER), 5556 preview (PUB), 8000 control plane (REST).
EXPOSE 5555 5556 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4).status == 200 else 1)"]

# Binding beyond loopback requires LIVEDENOISE_API_TOKEN (the server refuses to start without it).
ENTRYPOINT ["livedenoise", "serve", "--bind", "0.0.0.0"]
