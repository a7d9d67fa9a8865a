"""One error tree for the server, translated once at each edge (HTTP handler, ZMQ ``error`` reply).

    ProtocolError (clients.protocol)       a frames/1 message broke the protocol: an ErrorCode and a message
     └── FrameRejected                     ... or a limit or a rule of its stream (raised by the stream table)

    LiveDenoiseError
     ├── InvalidModel (ValueError)         an uploaded/loaded file is not a usable livedenoise model
     ├── UnknownModel (LookupError)        no model with that id
     ├── UnknownJob (LookupError)          no job with that id
     ├── InvalidRequest (ValueError)       a REST request is well-formed JSON but asks for something impossible
 │    └── UploadTooLarge                an upload is larger than LIVEDENOISE_MAX_UPLOAD_BYTES
     ├── Conflict (RuntimeError)           the request clashes with current state (e.g. delete the active model)
     ├── EngineError (RuntimeError)        the engine failed to load or run
     └── IngestUnavailable (ConnectionError) the ingest process did not answer on its control channel

Each class has a stable ``code`` and an HTTP status; :func:`error_class` is the one table from a code back to its
class (the ingest control channel carries codes between processes, the HTTP edge turns classes into statuses).
"""

from __future__ import annotations

from livedenoise.clients.protocol import ProtocolError

__all__ = [
    "LiveDenoiseError",
    "FrameRejected",
    "InvalidModel",
    "UnknownModel",
    "UnknownJob",
    "InvalidRequest",
    "UploadTooLarge",
    "Conflict",
    "EngineError",
    "IngestUnavailable",
    "Unauthorized",
    "error_class",
]


class LiveDenoiseError(Exception):
    code: str = "internal"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class FrameRejected(ProtocolError):
    """A frames/1 message refused by the stream table (a limit, or a rule of its series); ``code`` is its
    :class:`~livedenoise.clients.protocol.ErrorCode`, as for every other refusal."""


class InvalidModel(LiveDenoiseError, ValueError):
    code = "invalid_model"
    http_status = 422


class UnknownModel(LiveDenoiseError, LookupError):
    code = "unknown_model"
    http_status = 404


class UnknownJob(LiveDenoiseError, LookupError):
    code = "unknown_job"
    http_status = 404


class InvalidRequest(LiveDenoiseError, ValueError):
    code = "invalid_request"
    http_status = 422


class UploadTooLarge(InvalidRequest):
    code = "upload_too_large"
    http_status = 413


class Conflict(LiveDenoiseError, RuntimeError):
    code = "conflict"
    http_status = 409


class EngineError(LiveDenoiseError, RuntimeError):
    code = "engine_error"
    http_status = 500


class IngestUnavailable(LiveDenoiseError, ConnectionError):
    code = "ingest_unavailable"
    http_status = 503


class Unauthorized(LiveDenoiseError, PermissionError):
    code = "unauthorized"
    http_status = 401


def _all(cls: type[LiveDenoiseError]) -> list[type[LiveDenoiseError]]:
    return [cls] + [sub for child in cls.__subclasses__() for sub in _all(child)]


def error_class(code: str | None) -> type[LiveDenoiseError]:
    """The error class a stable ``code`` stands for (``LiveDenoiseError``, HTTP 500, for an unknown one)."""
    by_code = {cls.code: cls for cls in _all(LiveDenoiseError)}
    return by_code.get(code or "", LiveDenoiseError)
