"""One error tree for the server, translated once at each edge (HTTP handler, ZMQ ``error`` reply).

    LiveDenoiseError
     ├── FrameRejected (ValueError)        a frames/1 message broke the protocol or a limit
     ├── InvalidModel (ValueError)         an uploaded/loaded file is not a usable livedenoise model
     ├── UnknownModel (LookupError)        no model with that id
     ├── UnknownJob (LookupError)          no job with that id
     ├── InvalidRequest (ValueError)       a REST request is well-formed JSON but asks for something impossible
 │    └── UploadTooLarge                an upload is larger than LIVEDENOISE_MAX_UPLOAD_BYTES
     ├── Conflict (RuntimeError)           the request clashes with current state (e.g. delete the active model)
     ├── EngineError (RuntimeError)        the engine failed to load or run
     └── IngestUnavailable (ConnectionError) the ingest process did not answer on its control channel

Each class has a stable ``code`` and an HTTP status.
"""

from __future__ import annotations

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
]


class LiveDenoiseError(Exception):
    code: str = "internal"
    http_status: int = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class FrameRejected(LiveDenoiseError, ValueError):
    code = "bad_field"
    http_status = 400


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
