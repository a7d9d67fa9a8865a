# livedenoise trainer: PyTorch with CUDA, for training jobs and ONNX export (`livedenoise train ...`).
#
#   docker build -f docker/trainer.Dockerfile -t livedenoise:trainer .
#   docker run --gpus 1 -v "$PWD/data:/data" livedenoise:trainer train /data/noisy.tif --out /data/model.onnx
ARG TORCH_IMAGE=pytorch/pytorch:2.7.0-cuda12.8-cudnn9-runtime
FROM ${TORCH_IMAGE}

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY clients ./clients
COPY server ./server
COPY models ./models

# The base image's CUDA torch already satisfies the `train` extra, so pip keeps it (no CPU torch download).
RUN python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
 && pip install ".[train,zarr]" \
 && python -c "import torch, livedenoise.models; assert torch.version.cuda, 'the CUDA torch was replaced'" \
 && rm -rf /src

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/livedenoise --shell /usr/sbin/nologin livedenoise \
 && mkdir -p /var/lib/livedenoise /data \
 && chown livedenoise:livedenoise /var/lib/livedenoise /data

ENV LIVEDENOISE_HOME=/var/lib/livedenoise \
    LIVEDENOISE_DATA_ROOT=/data
VOLUME ["/var/lib/livedenoise"]
WORKDIR /data
USER livedenoise

ENTRYPOINT ["livedenoise"]
CMD ["train", "--help"]
