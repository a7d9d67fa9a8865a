"""One error tree: every code maps back to its class (the control channel's table), refusals carry ErrorCode."""

from __future__ import annotations

from livedenoise.clients.protocol import ErrorCode, ProtocolError
from livedenoise.server import errors


def test_every_error_code_maps_back_to_its_class() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    tree = [cls for cls in classes if issubclass(cls, errors.LiveDenoiseError)]
    assert len({cls.code for cls in tree}) == len(tree), "two classes share a code"
    for cls in tree:
        assert errors.error_class(cls.code) is cls
        assert 400 <= cls.http_status < 600
    assert errors.error_class("no_such_code") is errors.LiveDenoiseError
    assert errors.error_class(None) is errors.LiveDenoiseError


def test_a_stream_table_refusal_is_a_protocol_error_with_its_code() -> None:
    refusal = errors.FrameRejected(ErrorCode.NOT_OWNER, "not yours")
    assert isinstance(refusal, ProtocolError) and refusal.code is ErrorCode.NOT_OWNER and refusal.message == "not yours"
