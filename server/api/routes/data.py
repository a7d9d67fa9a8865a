"""Training data uploads, stored under the data root and named by content id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile, status

from livedenoise.server.api.deps import Authorized, RuntimeDep
from livedenoise.server.api.schemas import DataPublic

router = APIRouter(prefix="/v1/data", tags=["data"])


@router.post("", response_model=DataPublic, status_code=status.HTTP_201_CREATED, dependencies=[Authorized])
def upload_data(
    runtime: RuntimeDep, file: Annotated[UploadFile, File(description="a movie: .npy, .tif or .tiff")]
) -> DataPublic:
    """Store a training movie; use the returned id as a job's ``data``."""
    return DataPublic.of(runtime.jobs.data.store_upload(file.file, file.filename or ""))
