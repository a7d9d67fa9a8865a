# livedenoise on CPU only: serving (ONNX Runtime CPU) and training (CPU torch) in one image.
#
#   docker build -f docker/cpu.Dockerfile -t livedenoise:cpu .
#   docker run -p 5555:5555 -p 5556:5556 -p 8000:8000 -e LIVEDENOISE_API_TOKEN=... livedenoise:cpu
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ARG TORCH_VERSION=2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY clients ./clients
COPY server ./server
COPY models ./models

# CPU torch first, from the PyTorch CPU index (build time only): an unpinned torch from PyPI pulls CUDA.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
 && pip install ".[server,train,openvino,zarr]" \
 && python -c "import torch; assert torch.version.cuda is None, torch.version.cuda" \
 && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/livedenoise --shell /usr/sbin/nologin livedenoise \
 && mkdir -p /var/lib/livedenoise /data \
 && chown livedenoise:livedenoise /var/lib/livedenoise /data

ENV LIVEDENOISE_HOME=/var/lib/livedenoise \
    LIVEDENOISE_DATA_ROOT=/data \
    LIVEDENOISE_PROVIDER=cpu
VOLUME ["/var/lib/livedenoise"]
WORKDIR /var/lib/livedenoise
USER livedenoise

EXPOSE 5555 5556 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["livedenoise", "serve", "--bind", "0.0.0.0"]
