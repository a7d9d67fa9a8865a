"""Server settings, read from the environment (prefix ``LIVEDENOISE_``) and passed explicitly everywhere."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from livedenoise.clients.local_token import default_home
from livedenoise.clients.protocol import StreamMode

__all__ = ["Precision", "Provider", "StreamMode", "ServerSettings", "default_home"]


class Provider(str, Enum):
    CPU = "cpu"  # ONNX Runtime on the CPU: the default, installed with the server
    CUDA = "cuda"
    TENSORRT = "tensorrt"
    OPENVINO = "openvino"  # OpenVINO on Intel CPUs (extra `openvino`)


class Precision(str, Enum):
    """Arithmetic the engine may use: ``auto`` is the provider's fast precision (TensorRT fp16, OpenVINO bf16 on
    CPUs that have it natively; ONNX Runtime's CPU and CUDA providers are always fp32), ``fp32`` is exact."""

    AUTO = "auto"
    FP32 = "fp32"


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIVEDENOISE_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="state: model registry, job database, logs")
    bind: str = "127.0.0.1"
    zmq_port: int = Field(5555, ge=0, le=65535, description="ROUTER port for frames/1 (0 = pick a free port)")
    pub_port: int = Field(5556, ge=0, le=65535, description="PUB preview port (0 = pick a free port)")
    control_port: int = Field(5557, ge=0, le=65535, description="ingest control REP port, loopback only")
    http_port: int = Field(8000, ge=0, le=65535)
    provider: Provider = Provider.CPU
    precision: Precision = Field(
        Precision.AUTO, description="auto: the provider's fast precision (TensorRT fp16, OpenVINO bf16); fp32: exact"
    )
    model: Path | None = Field(None, description="ONNX model to load at start (registered if new)")
    default_mode: StreamMode = StreamMode.LOSSLESS
    max_frame_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_streams: int = Field(16, gt=0)
    max_batch: int = Field(8, gt=0, description="windows per engine call, across streams of one shape")
    trt_max_side: int = Field(
        2048, ge=16, description="TensorRT: the largest (padded) frame side its engine is built for, one shape profile"
    )
    live_max_backlog_frames: int = Field(
        32, gt=0, description="live mode: frames waiting before the oldest window is dropped"
    )
    max_buffered_frames: int = Field(4096, gt=0, description="lossless mode: frames held per stream before refusing")
    max_buffered_bytes: int = Field(
        2 * 1024**3,
        gt=0,
        description="all streams together: pixels held in windows plus replies a peer has not read; beyond it "
        "frames are refused with server_busy",
    )
    series_idle_timeout_s: float = Field(
        600.0,
        gt=0,
        description="an open series with no message for this long is closed as if `end` had been sent (its "
        "frames are answered) and its stream slot is freed; raise it for slow time-lapses",
    )
    max_upload_bytes: int = Field(8 * 1024**3, gt=0, description="largest model or training-movie upload")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime threads (0 = runtime default)")
    data_root: Path | None = Field(None, description="training data is read from here only (default: HOME/data)")
    api_token: str | None = Field(None, description="bearer token for mutating endpoints; required off loopback")
    curve_secret_key: Path | None = Field(
        None,
        description="the server's CURVE key pair (.key_secret file): frames and PUB ports then accept only the "
        "clients whose public keys lie in curve_clients_dir. Off loopback it is required; HOME/keys/server.key_secret "
        "is created when not given",
    )
    curve_clients_dir: Path | None = Field(
        None, description="allowed client public keys (*.key; default HOME/keys/clients)"
    )
    log_level: str = "INFO"
    allowed_hosts: list[str] | None = Field(
        None,
        description="Host headers the control plane answers (DNS-rebinding guard); default: the loopback names "
        "when bound to loopback, any host otherwise",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins (scheme://host:port) besides the server's own that may call the API",
    )
    max_json_bytes: int = Field(1024 * 1024, gt=0, description="largest request body outside the upload endpoints")
    job_max_seconds: float = Field(6 * 3600, gt=0, description="a training job running longer is stopped and failed")
    job_max_memory_bytes: int = Field(
        16 * 1024**3, gt=0, description="address space of a CPU training job (RLIMIT_AS; not applied to GPU jobs)"
    )
    job_nice: int = Field(10, ge=0, le=19, description="training jobs run at this niceness, behind ingest")
    job_threads: int = Field(
        0,
        ge=0,
        description="CPU threads of a training job; 0: every core but the engine's (intra_op_threads, or one core "
        "when that is 0), at least one, so training beside live ingest does not take the engine's cores",
    )

    def training_threads(self) -> int:
        """The CPU threads a training job gets (see ``job_threads``)."""
        if self.job_threads:
            return self.job_threads
        cores = os.cpu_count() or 1
        return max(1, cores - (self.intra_op_threads or 1))

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ServerSettings:
        if self.bind not in LOOPBACK and not self.api_token:
            raise ValueError(
                f"bind={self.bind!r} exposes the server beyond loopback: set LIVEDENOISE_API_TOKEN "
                "so mutating endpoints are protected"
            )
        return self

    @property
    def loopback_only(self) -> bool:
        return self.bind in LOOPBACK

    @property
    def curve_enabled(self) -> bool:
        """CURVE authentication on the frames and PUB ports: always off loopback, or when a key is given."""
        return self.curve_secret_key is not None or not self.loopback_only

    @property
    def resolved_curve_secret_key(self) -> Path:
        return self.curve_secret_key if self.curve_secret_key is not None else self.home / "keys" / "server.key_secret"

    @property
    def resolved_curve_clients_dir(self) -> Path:
        return self.curve_clients_dir if self.curve_clients_dir is not None else self.home / "keys" / "clients"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def jobs_db(self) -> Path:
        return self.home / "jobs.sqlite"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def resolved_data_root(self) -> Path:
        return self.data_root if self.data_root is not None else self.home / "data"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.models_dir, self.logs_dir, self.jobs_dir, self.resolved_data_root):
            path.mkdir(parents=True, exist_ok=True)
