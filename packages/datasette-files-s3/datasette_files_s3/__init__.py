"""S3 storage for datasette-files: registers the ``s3`` storage type."""

from datasette import hookimpl

from .storage import S3Storage

__all__ = ["S3Storage"]


@hookimpl
def register_files_storage_types(datasette):
    return [S3Storage]
