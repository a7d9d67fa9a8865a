"""Model registry endpoints: list, upload (validated), inspect, delete, load into the ingest process."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status

from livedenoise.server.api.deps import Authorized, RuntimeDep
from livedenoise.server.api.schemas import ModelLoaded, ModelPublic, ModelsPublic

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelsPublic)
def list_models(runtime: RuntimeDep) -> ModelsPublic:
    """Registered models, oldest first, and the active one."""
    active = runtime.registry.active_id()
    return ModelsPublic(models=[ModelPublic.of(r, active) for r in runtime.registry.list()], active=active)


@router.post("", response_model=ModelPublic, status_code=status.HTTP_201_CREATED, dependencies=[Authorized])
def upload_model(
    runtime: RuntimeDep,
    file: Annotated[UploadFile, File(description="an ONNX model exported by livedenoise (spec embedded)")],
    name: Annotated[str | None, Form()] = None,
) -> ModelPublic:
    """Validate and register an ONNX model; an identical file returns the existing record."""
    record = runtime.registry.add_stream(file.file, name=name, source=file.filename or "")
    return ModelPublic.of(record, runtime.registry.active_id())


@router.get("/{model_id}", response_model=ModelPublic)
def get_model(model_id: str, runtime: RuntimeDep) -> ModelPublic:
    """One model's record, including its embedded spec."""
    return ModelPublic.of(runtime.registry.get(model_id), runtime.registry.active_id())


@router.delete("/{model_id}", response_model=ModelPublic, dependencies=[Authorized])
def delete_model(model_id: str, runtime: RuntimeDep) -> ModelPublic:
    """Remove a model (not the active one: load another first)."""
    return ModelPublic.of(runtime.delete_model(model_id), None)


@router.post("/{model_id}/load", response_model=ModelLoaded, dependencies=[Authorized])
def load_model(model_id: str, runtime: RuntimeDep) -> ModelLoaded:
    """Hot-swap the model into the ingest process; it becomes active once it serves."""
    record, served = runtime.load_model(model_id)
    return ModelLoaded(model=ModelPublic.of(record, record.id), ingest=served)
