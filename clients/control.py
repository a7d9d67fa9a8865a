"""ControlClient: the REST control plane (``/v1``) from Python, over httpx (sync).

Light on purpose (httpx only). Every failure becomes a :class:`ControlError` carrying the server's stable
error ``code``, its message and the HTTP status (0 when the server could not be reached)::

    with ControlClient("http://127.0.0.1:8000", token=...) as control:
        model = control.upload_model("model.onnx")
        control.load_model(model.id)
        job = control.wait_job(control.submit_job("deepcad_rt", "movie.npy", {"epochs": 5}).id)
        compared = control.wait_job(control.submit_compare("movie.npy", ["deepcad_rt", "ted"]).id)
        folder = control.download_compare_report(compared.id, "movie-compare")  # report.html, results, models
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Any, TypeVar

import httpx

from livedenoise.clients.status import ServerStatus

__all__ = [
    "ControlClient",
    "ControlError",
    "ControlTimeout",
    "ModelInfo",
    "JobInfo",
    "JobLogs",
    "DataInfo",
    "TERMINAL_JOB_STATES",
]

TERMINAL_JOB_STATES = frozenset({"succeeded", "failed", "cancelled"})

T = TypeVar("T")


class ControlError(Exception):
    """A request failed: ``code`` is the server's stable error code, ``status`` the HTTP status (0: unreachable)."""

    def __init__(self, code: str, message: str, status: int = 0) -> None:
        super().__init__(f"{message} [{code}{f', HTTP {status}' if status else ''}]")
        self.code = code
        self.message = message
        self.status = status


class ControlTimeout(ControlError, TimeoutError):
    """``wait_job`` gave up before the job finished."""


def _build(cls: type[T], obj: dict[str, Any]) -> T:
    """A dataclass from a response dict; unknown keys (newer servers) are ignored."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in obj.items() if k in names})


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    filename: str
    size: int
    sha256: str
    spec: dict[str, Any]
    created: str
    source: str = ""
    active: bool = False


@dataclass(frozen=True)
class JobInfo:
    id: str
    state: str
    method: str  # compare: the methods compared, comma-separated
    data: str
    config: dict[str, Any] = field(default_factory=dict)
    activate: bool = False
    name: str | None = None
    backend: str = "local"
    created: str = ""
    started: str | None = None
    finished: str | None = None
    progress: float = 0.0
    epoch: int | None = None
    epochs: int | None = None
    loss: float | None = None
    model_id: str | None = None
    activated: bool = False
    error: str | None = None
    validation: dict[str, Any] | None = None  # held-out score beside the best classical filter's
    # Last, so that code building a JobInfo by position keeps working.
    kind: str = "train"  # or "compare"
    # compare: the method in progress, {method, index (1-based), total, stage, message}
    progress_detail: dict[str, Any] | None = None
    result: dict[str, Any] | None = None  # compare, once succeeded: results.json (rows, filters, recommendation)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_JOB_STATES


@dataclass(frozen=True)
class JobLogs:
    id: str
    log: str
    output: str


@dataclass(frozen=True)
class DataInfo:
    id: str
    path: str
    size: int
    sha256: str


class ControlClient:
    """Client of one livedenoise control plane.

    Parameters
    ----------
    base_url
        e.g. ``http://127.0.0.1:8000``.
    token
        Bearer token for mutating calls; default ``LIVEDENOISE_API_TOKEN`` from the environment. A server started
        without one writes its own to ``HOME/api_token`` (0600): pass that. It is never read implicitly, so a
        token is not offered to whatever happens to listen on a port.
    transport
        An httpx transport, e.g. ``httpx.MockTransport`` in tests.
    timeout
        Seconds per request (uploads and model loads get at least 120 s).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        token = token or os.environ.get("LIVEDENOISE_API_TOKEN") or None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, headers=headers, transport=transport, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _reaching(self, method: str, path: str) -> Iterator[None]:
        """httpx's transport failures as :class:`ControlError`."""
        try:
            yield
        except httpx.TimeoutException as exc:
            raise ControlError("timeout", f"{method} {self.base_url}{path} timed out: {exc}") from None
        except httpx.TransportError as exc:
            raise ControlError("unreachable", f"cannot reach the control plane at {self.base_url}: {exc}") from None

    def _request(self, method: str, path: str, *, slow: bool = False, **kwargs: Any) -> httpx.Response:
        if slow:
            kwargs.setdefault("timeout", max(self.timeout, 120.0))
        with self._reaching(method, path):
            response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise _error_of(response)
        return response

    def _download(self, path: str, sink: IO[bytes]) -> None:
        """GET ``path`` into ``sink`` as it arrives (a report with its models can be large)."""
        with self._reaching("GET", path), self._http.stream("GET", path, timeout=max(self.timeout, 120.0)) as response:
            if response.is_error:
                response.read()
                raise _error_of(response)
            for chunk in response.iter_bytes():
                sink.write(chunk)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # ---- service ------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "version": ...}`` when the control plane is up."""
        return dict(self._json("GET", "/v1/health"))

    def status(self) -> ServerStatus:
        """The ingest status (streams, rates, latency, counters, model, provider, threads) and the control
        plane's section (:class:`~livedenoise.clients.status.ServerStatus`)."""
        return ServerStatus.from_dict(self._json("GET", "/v1/status"))

    def metrics(self) -> str:
        """The Prometheus text page."""
        return self._request("GET", "/metrics").text

    # ---- models -------------------------------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        return [_build(ModelInfo, m) for m in self._json("GET", "/v1/models")["models"]]

    def upload_model(self, path: str | Path, name: str | None = None) -> ModelInfo:
        """Upload an ONNX model file; the server validates it before storing it."""
        path = Path(path)
        with path.open("rb") as fh:
            data = {"name": name} if name else None
            obj = self._json(
                "POST", "/v1/models", files={"file": (path.name, fh, "application/octet-stream")}, data=data, slow=True
            )
        return _build(ModelInfo, obj)

    def get_model(self, model_id: str) -> ModelInfo:
        return _build(ModelInfo, self._json("GET", f"/v1/models/{model_id}"))

    def delete_model(self, model_id: str) -> ModelInfo:
        return _build(ModelInfo, self._json("DELETE", f"/v1/models/{model_id}"))

    def load_model(self, model_id: str) -> ModelInfo:
        """Hot-swap ``model_id`` into the ingest process; returns once it serves."""
        return _build(ModelInfo, self._json("POST", f"/v1/models/{model_id}/load", slow=True)["model"])

    # ---- data and jobs ------------------------------------------------------------------------------
    def upload_data(self, path: str | Path) -> DataInfo:
        """Upload a training movie (.npy/.tif); use the returned id as ``submit_job``'s ``data``."""
        path = Path(path)
        with path.open("rb") as fh:
            obj = self._json("POST", "/v1/data", files={"file": (path.name, fh, "application/octet-stream")}, slow=True)
        return _build(DataInfo, obj)

    def submit_job(
        self,
        method: str,
        data: str,
        config: dict[str, Any] | None = None,
        *,
        activate: bool = False,
        name: str | None = None,
    ) -> JobInfo:
        """Queue a training job on ``data`` (a path under the server's data root, or an uploaded data id)."""
        body: dict[str, Any] = {"method": method, "data": data, "config": config or {}, "activate": activate}
        if name is not None:
            body["name"] = name
        return _build(JobInfo, self._json("POST", "/v1/jobs", json=body))

    def submit_compare(
        self,
        data: str,
        methods: list[str] | None = None,
        config: dict[str, Any] | None = None,
        *,
        time_budget_s: float | None = None,
        max_latency: int | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        clean: str | None = None,
    ) -> JobInfo:
        """Queue a comparison of methods on ``data`` (``livedenoise compare`` as a job).

        Every method and field is validated at submit: a bad one is a :class:`ControlError` (422) naming it, and
        no job is created. Follow it with :meth:`wait_job` (``progress_detail`` names the method in progress),
        then read ``result`` (results.json), :meth:`compare_report` or :meth:`download_compare_report`.

        Parameters
        ----------
        data
            A path under the server's data root, or an uploaded data id (:meth:`upload_data`).
        methods
            The methods to compare; default every method.
        config
            Training fields for every method (``--set KEY=VALUE``), e.g. ``{"epochs": 3}``.
        time_budget_s
            Seconds for the whole comparison; default each method's own budget.
        max_latency
            Recommend only estimates that read at most this many future frames.
        overrides
            Training fields for one method (``--set METHOD.KEY=VALUE``): ``{"deepcad_rt": {"patch_t": 8}}``.
        clean
            Ground truth of the same shape, named as ``data`` is; adds PSNR and SSIM.

        Returns
        -------
        JobInfo
            The queued job, ``kind == "compare"``.
        """
        body: dict[str, Any] = {"kind": "compare", "data": data, "config": config or {}}
        optional = {
            "methods": methods,
            "time_budget_s": time_budget_s,
            "max_latency": max_latency,
            "overrides": overrides,
            "clean": clean,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return _build(JobInfo, self._json("POST", "/v1/jobs", json=body))

    def compare_report(self, job_id: str) -> str:
        """A succeeded comparison's ``report.html`` (self-contained: inline style, the figure as a data URI).

        Raises :class:`ControlError` ``no_report``: 409 until the job has succeeded (or when it failed or was
        cancelled), 404 for a training job; ``unknown_job`` (404) for an unknown id.
        """
        return self._request("GET", f"/v1/jobs/{job_id}/report").text

    def download_compare_report(self, job_id: str, out_dir: str | Path) -> Path:
        """Download a succeeded comparison's report folder (``report.zip``) and unpack it into ``out_dir``.

        The archive is checked before anything is written: a member with an absolute path or a ``..`` part is
        refused with :class:`ControlError` ``bad_archive``. Files already in ``out_dir`` with the same names
        are overwritten. Errors for a job without a report are those of :meth:`compare_report`.

        Returns
        -------
        Path
            The unpacked report folder, ``out_dir/<job id>-compare`` (the archive's one top-level folder).
        """
        path = f"/v1/jobs/{job_id}/report.zip"
        with tempfile.TemporaryFile() as archive:
            self._download(path, archive)
            archive.seek(0)
            return _unpack_report(archive, Path(out_dir), f"GET {path}")

    def jobs(self, state: str | None = None) -> list[JobInfo]:
        params = {"state": state} if state else None
        return [_build(JobInfo, j) for j in self._json("GET", "/v1/jobs", params=params)["jobs"]]

    def job(self, job_id: str) -> JobInfo:
        return _build(JobInfo, self._json("GET", f"/v1/jobs/{job_id}"))

    def job_logs(self, job_id: str, tail: int = 200) -> JobLogs:
        return _build(JobLogs, self._json("GET", f"/v1/jobs/{job_id}/logs", params={"tail": tail}))

    def cancel_job(self, job_id: str) -> JobInfo:
        return _build(JobInfo, self._json("POST", f"/v1/jobs/{job_id}/cancel", slow=True))

    def wait_job(self, job_id: str, timeout: float = 3600.0, poll: float = 0.5) -> JobInfo:
        """Poll until the job is succeeded, failed or cancelled; raises :class:`ControlTimeout` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.done:
                return job
            if time.monotonic() >= deadline:
                raise ControlTimeout(
                    "timeout", f"job {job_id} still {job.state} ({job.progress:.0%}) after {timeout:.0f} s"
                )
            time.sleep(poll)


def _unpack_report(archive: IO[bytes], out_dir: Path, source: str) -> Path:
    """Unpack a report archive into ``out_dir`` once every member name is known to stay inside it."""
    try:
        with zipfile.ZipFile(archive) as zf:
            names = zf.namelist()
            for name in names:
                # Read as Windows would: both separators, and drive letters, so no platform can place it outside.
                member = PureWindowsPath(name)
                if member.anchor or ".." in member.parts or not member.parts:
                    raise ControlError(
                        "bad_archive",
                        f"{source}: refusing member {name!r}: an absolute path or '..' could land outside {out_dir}",
                    )
            out_dir.mkdir(parents=True, exist_ok=True)
            zf.extractall(out_dir)
    except zipfile.BadZipFile as exc:
        raise ControlError("bad_archive", f"{source}: not a zip archive ({exc})") from None
    roots = {PurePosixPath(name).parts[0] for name in names}
    return out_dir / roots.pop() if len(roots) == 1 and all("/" in name for name in names) else out_dir


def _error_of(response: httpx.Response) -> ControlError:
    try:
        error = response.json().get("error")
    except ValueError:
        error = None
    if isinstance(error, dict) and "code" in error:
        return ControlError(str(error["code"]), str(error.get("message", "")), response.status_code)
    text = response.text.strip()[:300] or response.reason_phrase
    return ControlError(
        f"http_{response.status_code}",
        f"{response.request.method} {response.request.url.path}: {text}",
        response.status_code,
    )
