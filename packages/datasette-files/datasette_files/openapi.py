"""The OpenAPI 3.1 description of the JSON API, served at /-/files/openapi.json.

The document is a plain dict built once here; the view only fills in
``servers`` from Datasette's ``base_url``. Paths are relative to that
server, so ``/-/files/sources.json`` under ``base_url: /prefix/`` is
``/prefix/-/files/sources.json``.

Response schemas allow extra keys (``additionalProperties`` is left open)
so adding a key to a reply never breaks a client checking against this.
"""

from __future__ import annotations

import copy

from datasette import Response

JSON = "application/json"

ERROR_STATUSES = {
    400: "Bad input: malformed JSON, a missing or invalid field, a bad or expired token.",
    403: "The actor may not do this (or a cross-site POST refused by Datasette).",
    404: "No such source, file or job, or one the actor may not browse.",
    405: "Wrong HTTP method.",
    408: "The client sent the body too slowly.",
    409: (
        "Conflict: token already used, upload not yet sent, wrong stored size, "
        "or (on_duplicate: reject) the source already has the same bytes: "
        "duplicate_of is that file's id."
    ),
    413: "Larger than the source's max_file_size or the declared size.",
    415: (
        "The source's allowed_types refuse the declared type (prepare) or the "
        "bytes (upload; complete for direct uploads); allowed_types lists them."
    ),
    416: "The Range header asks for bytes outside the file.",
    503: "The source's backend is unavailable right now.",
    507: "The source's storage is full.",
}

ERROR_EXAMPLE = {
    "ok": False,
    "error": "size must not be negative",
    "errors": ["size must not be negative"],
    "status": 400,
}

FILE_ID_EXAMPLE = "df-01jdq3w4x2m5r8k9t7v6b4n3c2"
HASH_EXAMPLE = (
    "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
)

FILE_EXAMPLE = {
    "id": FILE_ID_EXAMPLE,
    "filename": "report.pdf",
    "content_type": "application/pdf",
    "content_hash": HASH_EXAMPLE,
    "size": 52311,
    "width": None,
    "height": None,
    "source_slug": "my-files",
    "uploaded_by": "alice",
    "created_at": "2026-11-21T10:15:02.123456Z",
    "search_text": "",
    "url": f"/-/files/{FILE_ID_EXAMPLE}",
    "download_url": f"/-/files/{FILE_ID_EXAMPLE}/download",
    "thumbnail_url": f"/-/files/{FILE_ID_EXAMPLE}/thumbnail",
    "thumbnail_srcset": ", ".join(
        f"/-/files/{FILE_ID_EXAMPLE}/thumbnail?w={size} {size}w"
        for size in (64, 200, 400, 800)
    ),
}


CONTENT_HASH = {
    "type": ["string", "null"],
    "pattern": "^sha256:[0-9a-f]{64}$",
    "description": "`sha256:<hex>` of the bytes; null until it is computed.",
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema_type: str, **extra) -> dict:
    return {"type": [schema_type, "null"], **extra}


# A sync job (sync/views.py job_json); counts are null while unknown.
SYNC_JOB = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "source": {"type": "string"},
        "status": {"enum": ["running", "finished", "interrupted", "failed"]},
        "finished": {"type": "boolean"},
        "prefix": {"type": "string"},
        "prune": {"type": "boolean"},
        "listing_done": {"type": "boolean"},
        **{
            name: {"type": ["integer", "null"]}
            for name in (
                "seen",
                "registered",
                "updated",
                "skipped",
                "missing",
                "removed",
            )
        },
        "error": {"type": ["string", "null"]},
        "url": {"type": "string"},
    },
    "required": ["id", "source", "status", "finished", "url"],
}


def ok_object(properties: dict, required: list[str] | None = None) -> dict:
    """A successful reply: ``{"ok": true, ...}``; extra keys allowed."""
    return {
        "type": "object",
        "properties": {"ok": {"const": True}, **properties},
        "required": ["ok", *(required or list(properties))],
    }


def json_response(description: str, schema: dict, example=None) -> dict:
    content = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {JSON: content}}


def errors(*statuses: int) -> dict:
    return {
        str(status): {"$ref": f"#/components/responses/E{status}"}
        for status in statuses
    }


def json_body(schema: dict, example: dict, required: bool = True) -> dict:
    return {
        "required": required,
        "content": {JSON: {"schema": schema, "example": example}},
    }


def parameter(name: str, where: str, schema: dict | None = None, **extra) -> dict:
    """A parameter; those in the query or a header are optional unless
    ``required=True`` says otherwise (OpenAPI's default)."""
    return {
        "name": name,
        "in": where,
        **({"required": True} if where == "path" else {}),
        "schema": schema or {"type": "string"},
        **extra,
    }


SLUG = {"$ref": "#/components/parameters/slug"}
FILE_ID = {"$ref": "#/components/parameters/file_id"}
JOB_ID = {"$ref": "#/components/parameters/job_id"}
PAGE_SIZE = parameter(
    "_size",
    "query",
    {"type": "integer", "minimum": 1, "maximum": 1000},
    description="Page size, 1 to 1000 (default 50).",
)

TOKEN_BODY = {
    "type": "object",
    "properties": {"upload_token": {"type": "string"}},
    "required": ["upload_token"],
}

# What every upload step may answer besides its success: the source may be
# missing (404), forbidden (403), down (503) or full (507).
UPLOAD_ERRORS = (400, 403, 404, 405, 409, 503, 507)

SCHEMAS = {
    "Error": {
        "type": "object",
        "description": "Every JSON error, whatever the endpoint.",
        "properties": {
            "ok": {"const": False},
            "error": {
                "type": "string",
                "description": "All messages joined with '; '.",
            },
            "errors": {"type": "array", "items": {"type": "string"}},
            "status": {
                "type": "integer",
                "description": "The HTTP status code again.",
            },
            "allowed_types": {
                "type": "array",
                "items": {"type": "string"},
                "description": "With 415: the types the source accepts.",
            },
            "duplicate_of": {
                "type": "string",
                "description": "With 409 from complete: the existing file's id.",
            },
        },
        "required": ["ok", "error", "errors", "status"],
        "example": ERROR_EXAMPLE,
    },
    "File": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^df-[0-9a-z]+$"},
            "filename": {"type": "string"},
            "content_type": nullable("string"),
            "content_hash": CONTENT_HASH,
            "size": nullable("integer", minimum=0),
            "width": nullable("integer"),
            "height": nullable("integer"),
            "source_slug": {"type": "string"},
            "uploaded_by": nullable("string"),
            "created_at": {"type": "string"},
            "search_text": nullable("string"),
            "url": {"type": "string"},
            "download_url": {"type": "string"},
            "thumbnail_url": {"type": "string"},
            # The sized variants, for an <img srcset>.
            "thumbnail_srcset": {"type": "string"},
        },
        "required": [
            "id",
            "filename",
            "content_type",
            "content_hash",
            "size",
            "source_slug",
            "created_at",
            "url",
            "download_url",
            "thumbnail_url",
        ],
        "example": FILE_EXAMPLE,
    },
    "FileReply": ok_object({"file": ref("File")}),
    "Source": {
        "type": "object",
        "properties": {
            "slug": {"type": "string"},
            "storage": {"type": "string"},
            "available": {"type": "boolean"},
            "url": {"type": "string"},
            "can_upload": {"type": "boolean"},
            "prepare_url": nullable("string"),
            "capabilities": {"type": "object"},
            "max_file_size": nullable("integer"),
            "allowed_types": {
                "type": ["array", "null"],
                "items": {"type": "string"},
                "description": "MIME types and wildcards; null: anything.",
            },
            "on_duplicate": {"enum": ["allow", "reuse", "reject"]},
            "file_count": {"type": "integer"},
        },
        "required": ["slug", "storage", "available", "url", "can_upload"],
    },
    "Upload": {
        "type": "object",
        "description": "How to send the bytes.",
        "properties": {
            "mode": {"enum": ["proxy", "direct", "multipart"]},
            "url": {"type": "string"},
            "method": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "part_size": {"type": "integer"},
            "part_count": {"type": "integer"},
            "parts_url": {"type": "string"},
        },
        "required": ["mode", "url", "method", "headers", "fields"],
    },
    "Prepared": ok_object(
        {
            "upload_token": {"type": "string"},
            "file_id": {"type": "string"},
            "expires_in": {"type": "integer"},
            "filename": {"type": "string"},
            "content_type": nullable("string"),
            "size": {"type": "integer"},
            "upload": ref("Upload"),
            "upload_url": {"type": "string", "description": "= upload.url"},
            "upload_method": {"type": "string", "description": "= upload.method"},
            "upload_headers": {
                "type": "object",
                "description": "= upload.headers",
            },
            "upload_fields": {
                "type": "object",
                "description": "= upload.fields (proxy mode: {upload_token})",
            },
            "complete_url": {"type": "string"},
            "abort_url": {"type": "string"},
        },
        [
            "upload_token",
            "file_id",
            "expires_in",
            "upload",
            "complete_url",
            "abort_url",
        ],
    ),
    "ImportJob": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string"},
            "finished": {"type": "boolean"},
            "file_id": {"type": "string"},
            "database": {"type": "string"},
            "table": {"type": "string"},
            "table_url": nullable("string"),
            "rows_imported": {"type": "integer"},
            "bytes_read": {"type": "integer"},
            "bytes_total": nullable("integer"),
            "progress": nullable("number"),
            "error": nullable("string"),
            "url": {"type": "string"},
            "json_url": {"type": "string"},
        },
        "required": ["id", "status", "finished", "file_id", "url", "json_url"],
    },
}

PREPARED_EXAMPLE = {
    "ok": True,
    "upload_token": "single-use-secret",
    "file_id": FILE_ID_EXAMPLE,
    "expires_in": 3600,
    "filename": "report.pdf",
    "content_type": "application/pdf",
    "size": 52311,
    "upload": {
        "mode": "proxy",
        "url": "/-/files/upload/my-files/-/upload",
        "method": "POST",
        "headers": {
            "Content-Type": "application/octet-stream",
            "X-Upload-Token": "single-use-secret",
        },
        "fields": {},
    },
    "upload_url": "/-/files/upload/my-files/-/upload",
    "upload_method": "POST",
    "upload_headers": {
        "Content-Type": "application/octet-stream",
        "X-Upload-Token": "single-use-secret",
    },
    "upload_fields": {"upload_token": "single-use-secret"},
    "complete_url": "/-/files/upload/my-files/-/complete",
    "abort_url": "/-/files/upload/my-files/-/abort",
}

FILE_LIST = {
    "files": {"type": "array", "items": ref("File")},
    "next": nullable("string"),
    "next_url": nullable("string"),
}

PATHS = {
    "/-/files/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {
                "200": json_response("The OpenAPI document", {"type": "object"})
            },
        }
    },
    "/-/files/sources.json": {
        "get": {
            "operationId": "listSources",
            "summary": "Sources the actor may browse",
            "responses": {
                "200": json_response(
                    "The sources",
                    ok_object({"sources": {"type": "array", "items": ref("Source")}}),
                ),
                **errors(503),
            },
        }
    },
    "/-/files/batch.json": {
        "get": {
            "operationId": "batchFiles",
            "summary": "Metadata for up to 100 files",
            "parameters": [
                parameter(
                    "id",
                    "query",
                    {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 100,
                    },
                    required=True,
                    style="form",
                    explode=True,
                )
            ],
            "responses": {
                "200": json_response(
                    "The visible files by id, and the ids missing or not visible",
                    ok_object(
                        {
                            "files": {
                                "type": "object",
                                "additionalProperties": ref("File"),
                            },
                            "missing": {"type": "array", "items": {"type": "string"}},
                        }
                    ),
                    {
                        "ok": True,
                        "files": {FILE_ID_EXAMPLE: FILE_EXAMPLE},
                        "missing": [],
                    },
                ),
                **errors(400),
            },
        }
    },
    "/-/files/search.json": {
        "get": {
            "operationId": "searchFiles",
            "summary": "Full-text search over the files the actor may browse",
            "parameters": [
                parameter("q", "query", {"type": "string", "maxLength": 500}),
                parameter("source", "query"),
                parameter("_next", "query", {"type": "string", "pattern": "^[0-9]+$"}),
                PAGE_SIZE,
            ],
            "responses": {
                "200": json_response(
                    "Matching files",
                    ok_object(
                        {
                            "q": {"type": "string"},
                            "source": nullable("string"),
                            **FILE_LIST,
                        }
                    ),
                ),
                **errors(400),
            },
        }
    },
    "/-/files/storages": {
        "get": {
            "operationId": "debugStorages",
            "summary": "Debug: storage types and sources (debug-storages)",
            "responses": {
                "200": json_response(
                    "Storage types and every configured source",
                    ok_object(
                        {
                            "storage_types": {
                                "type": "array",
                                "items": {"type": "string"},
                            },
                            "sources": {"type": "array", "items": {"type": "object"}},
                        }
                    ),
                ),
                **errors(403),
            },
        }
    },
    "/-/files/storages/list/{slug}": {
        "get": {
            "operationId": "debugStorageList",
            "summary": "Debug: the raw backend listing of a source (debug-storages)",
            "parameters": [
                SLUG,
                parameter("cursor", "query"),
                parameter("prefix", "query"),
                parameter(
                    "limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000}
                ),
            ],
            "responses": {
                "200": json_response(
                    "One page of the backend's objects",
                    ok_object(
                        {
                            "source": {"type": "string"},
                            "files": {"type": "array", "items": {"type": "object"}},
                            "next_cursor": nullable("string"),
                        }
                    ),
                ),
                **errors(400, 403, 404, 503),
            },
        }
    },
    "/-/files/source/{slug}.json": {
        "get": {
            "operationId": "listSourceFiles",
            "summary": "Files in a source, newest first, keyset-paginated",
            "parameters": [
                SLUG,
                parameter("_next", "query"),
                PAGE_SIZE,
            ],
            "responses": {
                "200": json_response(
                    "One page of files; follow next_url until it is null",
                    ok_object({"source": ref("Source"), **FILE_LIST}),
                ),
                **errors(400, 404),
            },
        }
    },
    "/-/files/source/{slug}/-/sync.json": {
        "get": {
            "operationId": "getSync",
            "summary": "The running or latest sync of a source (docs/sync.md)",
            "parameters": [SLUG],
            "responses": {
                "200": json_response(
                    "The job, or null before the first sync",
                    ok_object({"job": {"anyOf": [SYNC_JOB, {"type": "null"}]}}),
                ),
                **errors(403, 404),
            },
        },
        "post": {
            "operationId": "startSync",
            "summary": "Register the files the source's backend already holds",
            "parameters": [SLUG],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "prune": {
                            "type": "boolean",
                            "description": "remove rows whose object is gone",
                        },
                        "prefix": {"type": "string", "maxLength": 1024},
                    },
                    "additionalProperties": False,
                },
                {"prune": False},
                required=False,
            ),
            "responses": {
                "202": json_response(
                    "Started (or resumed) in the background; poll with GET",
                    ok_object({"job": SYNC_JOB}),
                ),
                **errors(400, 403, 404, 409, 503),
            },
        },
    },
    "/-/files/upload/{slug}/-/prepare": {
        "post": {
            "operationId": "prepareUpload",
            "summary": "Start an upload",
            "parameters": [SLUG],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "filename": {"type": "string", "minLength": 1},
                        "content_type": {"type": "string"},
                        "size": {"type": "integer", "minimum": 0},
                        "direct": {
                            "type": "boolean",
                            "description": "false: send the bytes through Datasette",
                        },
                    },
                    "required": ["filename", "size"],
                },
                {
                    "filename": "report.pdf",
                    "content_type": "application/pdf",
                    "size": 52311,
                },
            ),
            "responses": {
                "200": json_response(
                    "Where and how to send the bytes",
                    ref("Prepared"),
                    PREPARED_EXAMPLE,
                ),
                **errors(*UPLOAD_ERRORS, 413, 415),
            },
        }
    },
    "/-/files/upload/{slug}/-/upload": {
        "post": {
            "operationId": "uploadBytes",
            "summary": "The bytes, for proxied uploads",
            "description": (
                "Either the raw body with an X-Upload-Token header, or a "
                "multipart form with upload_token before file."
            ),
            "parameters": [
                SLUG,
                parameter("X-Upload-Token", "header"),
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/octet-stream": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "upload_token": {"type": "string"},
                                "file": {"type": "string", "format": "binary"},
                            },
                            "required": ["upload_token", "file"],
                        },
                        "encoding": {
                            "file": {"contentType": "application/octet-stream"}
                        },
                    },
                },
            },
            "responses": {
                "200": json_response(
                    "The bytes are stored; now complete",
                    ok_object(
                        {
                            "file_id": {"type": "string"},
                            "size": {"type": "integer"},
                            "content_hash": CONTENT_HASH,
                        }
                    ),
                    {
                        "ok": True,
                        "file_id": FILE_ID_EXAMPLE,
                        "size": 52311,
                        "content_hash": HASH_EXAMPLE,
                    },
                ),
                **errors(*UPLOAD_ERRORS, 408, 413, 415),
            },
        }
    },
    "/-/files/upload/{slug}/-/parts": {
        "post": {
            "operationId": "uploadPartUrls",
            "summary": "Presigned part URLs, for multipart direct uploads",
            "parameters": [SLUG],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "upload_token": {"type": "string"},
                        "part_numbers": {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 1},
                            "minItems": 1,
                            "maxItems": 100,
                        },
                    },
                    "required": ["upload_token", "part_numbers"],
                },
                {"upload_token": "single-use-secret", "part_numbers": [1, 2, 3]},
            ),
            "responses": {
                "200": json_response(
                    "Part number → presigned PUT URL",
                    ok_object(
                        {
                            "urls": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            }
                        }
                    ),
                ),
                **errors(*UPLOAD_ERRORS),
            },
        }
    },
    "/-/files/upload/{slug}/-/complete": {
        "post": {
            "operationId": "completeUpload",
            "summary": "Finish an upload: the file",
            "parameters": [SLUG],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "upload_token": {"type": "string"},
                        "parts": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "PartNumber": {"type": "integer", "minimum": 1},
                                    "ETag": {"type": "string"},
                                },
                                "required": ["PartNumber", "ETag"],
                            },
                        },
                    },
                    "required": ["upload_token"],
                },
                {"upload_token": "single-use-secret"},
            ),
            "responses": {
                "200": json_response(
                    "on_duplicate: reuse: the source already had these bytes; "
                    "the existing file, and the new bytes were removed",
                    ok_object(
                        {"file": ref("File"), "duplicate_of": {"type": "string"}}
                    ),
                    {"ok": True, "file": FILE_EXAMPLE, "duplicate_of": FILE_ID_EXAMPLE},
                ),
                "201": json_response(
                    "The file is registered",
                    ref("FileReply"),
                    {"ok": True, "file": FILE_EXAMPLE},
                ),
                **errors(*UPLOAD_ERRORS, 413, 415),
            },
        }
    },
    "/-/files/upload/{slug}/-/abort": {
        "post": {
            "operationId": "abortUpload",
            "summary": "Cancel an upload and remove partial data",
            "parameters": [SLUG],
            "requestBody": json_body(TOKEN_BODY, {"upload_token": "single-use-secret"}),
            "responses": {
                "200": json_response("Aborted", ok_object({}, []), {"ok": True}),
                **errors(*UPLOAD_ERRORS),
            },
        }
    },
    "/-/files/{file_id}.json": {
        "get": {
            "operationId": "getFile",
            "summary": "One file",
            "parameters": [FILE_ID],
            "responses": {
                "200": json_response(
                    "The file", ref("FileReply"), {"ok": True, "file": FILE_EXAMPLE}
                ),
                **errors(404),
            },
        }
    },
    "/-/files/{file_id}/download": {
        "get": {
            "operationId": "downloadFile",
            "summary": "The bytes (Range supported), or a redirect to a signed URL",
            "parameters": [
                FILE_ID,
                parameter("Range", "header", example="bytes=0-1023"),
            ],
            "responses": {
                "200": {
                    "description": "The whole file, as its content type",
                    "content": {"*/*": {"schema": {}}},
                },
                "206": {
                    "description": "One byte range",
                    "content": {"*/*": {"schema": {}}},
                },
                "302": {"description": "A short-lived signed URL (S3 and the like)"},
                **errors(404, 416, 503),
            },
        }
    },
    "/-/files/{file_id}/thumbnail": {
        "get": {
            "operationId": "fileThumbnail",
            "summary": "Thumbnail image, or the SVG type icon",
            "parameters": [
                FILE_ID,
                *(
                    parameter(
                        name,
                        "query",
                        {"type": "integer"},
                        description="A sized variant: one of the "
                        "thumbnail_sizes (default 64, 200, 400, 800)",
                    )
                    for name in ("w", "h")
                ),
                parameter(
                    "fit", "query", {"type": "string", "enum": ["contain", "cover"]}
                ),
                parameter(
                    "format",
                    "query",
                    {"type": "string", "enum": ["webp", "png", "jpeg"]},
                ),
                parameter("If-None-Match", "header"),
            ],
            "responses": {
                "200": {
                    "description": "A thumbnail (image/*) or the type icon (SVG)",
                    "content": {"image/*": {"schema": {}}},
                },
                "304": {"description": "Not modified (ETag matched)"},
                **errors(400, 404),
            },
        }
    },
    "/-/files/{file_id}/-/update": {
        "post": {
            "operationId": "updateFile",
            "summary": "Edit search_text or filename",
            "parameters": [FILE_ID],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "update": {
                            "type": "object",
                            "properties": {
                                "search_text": {"type": "string", "maxLength": 100000},
                                "filename": {"type": "string", "minLength": 1},
                            },
                            "additionalProperties": False,
                            "minProperties": 1,
                        }
                    },
                    "required": ["update"],
                },
                {"update": {"search_text": "Q3 board report"}},
            ),
            "responses": {
                "200": json_response(
                    "The updated file",
                    ref("FileReply"),
                    {"ok": True, "file": FILE_EXAMPLE},
                ),
                **errors(400, 403, 404, 405),
            },
        }
    },
    "/-/files/{file_id}/-/delete": {
        "post": {
            "operationId": "deleteFile",
            "summary": "Delete the file",
            "parameters": [FILE_ID],
            "responses": {
                "200": json_response(
                    "Deleted",
                    ok_object({"deleted": {"type": "string"}}),
                    {"ok": True, "deleted": FILE_ID_EXAMPLE},
                ),
                **errors(400, 403, 404, 405, 503),
            },
        }
    },
    "/-/files/{file_id}/-/import.json": {
        "get": {
            "operationId": "previewImport",
            "summary": "CSV/TSV import preview",
            "parameters": [
                FILE_ID,
                parameter(
                    "delimiter",
                    "query",
                    {"enum": ["auto", "comma", "tab", "semicolon", "pipe"]},
                ),
            ],
            "responses": {
                "200": json_response(
                    "The detected encoding, delimiter, columns and sample rows",
                    ok_object(
                        {
                            "file": ref("File"),
                            "encoding": {"type": "string"},
                            "delimiter": {"type": "string"},
                            "columns": {"type": "array", "items": {"type": "object"}},
                            "sample_rows": {"type": "array"},
                            "databases": {"type": "array", "items": {"type": "string"}},
                            "table": {"type": "string"},
                            "import_url": {"type": "string"},
                        },
                        ["file", "columns", "databases", "table", "import_url"],
                    ),
                ),
                **errors(400, 403, 404, 503),
            },
        },
        "post": {
            "operationId": "startImport",
            "summary": "Create the table and start the import",
            "parameters": [FILE_ID],
            "requestBody": json_body(
                {
                    "type": "object",
                    "properties": {
                        "database": {"type": "string"},
                        "table": {"type": "string"},
                        "delimiter": {
                            "enum": ["auto", "comma", "tab", "semicolon", "pipe"]
                        },
                    },
                    "required": ["database", "table"],
                },
                {"database": "data", "table": "sales"},
            ),
            "responses": {
                "202": json_response(
                    "Started; poll the job",
                    ok_object({"job": ref("ImportJob")}),
                ),
                **errors(400, 403, 404, 409, 503),
            },
        },
    },
    "/-/files/imports/{job_id}.json": {
        "get": {
            "operationId": "getImportJob",
            "summary": "An import's progress",
            "parameters": [JOB_ID],
            "responses": {
                "200": json_response("The job", ok_object({"job": ref("ImportJob")})),
                **errors(404),
            },
        }
    },
}

# The stateful run follows these: prepare → upload → complete (or abort).
_TOKEN_LINK = {"upload_token": "$response.body#/upload_token"}
PATHS["/-/files/upload/{slug}/-/prepare"]["post"]["responses"]["200"]["links"] = {
    "UploadBytes": {
        "operationId": "uploadBytes",
        "parameters": {
            "path.slug": "$request.path.slug",
            "header.X-Upload-Token": "$response.body#/upload_token",
        },
    },
    "CompleteUpload": {
        "operationId": "completeUpload",
        "parameters": {"path.slug": "$request.path.slug"},
        "requestBody": _TOKEN_LINK,
    },
    "AbortUpload": {
        "operationId": "abortUpload",
        "parameters": {"path.slug": "$request.path.slug"},
        "requestBody": _TOKEN_LINK,
    },
}
PATHS["/-/files/upload/{slug}/-/upload"]["post"]["responses"]["200"]["links"] = {
    "CompleteUpload": {
        "operationId": "completeUpload",
        "parameters": {"path.slug": "$request.path.slug"},
        "requestBody": {"upload_token": "$request.header.X-Upload-Token"},
    },
}
_prepare = PATHS["/-/files/upload/{slug}/-/prepare"]["post"]["responses"]
PATHS["/-/files/upload/{slug}/-/complete"]["post"]["responses"]["201"]["links"] = {
    "GetFile": {
        "operationId": "getFile",
        "parameters": {"path.file_id": "$response.body#/file/id"},
    },
    "UpdateFile": {
        "operationId": "updateFile",
        "parameters": {"path.file_id": "$response.body#/file/id"},
    },
    "DeleteFile": {
        "operationId": "deleteFile",
        "parameters": {"path.file_id": "$response.body#/file/id"},
    },
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {
        "title": "datasette-files",
        "version": "1",
        "description": (
            "The JSON API of datasette-files. Every error, on every path, is "
            "the Error object. Authenticate as Datasette does: the ds_actor "
            "cookie or an API token (Authorization: Bearer dstok_...)."
        ),
    },
    "servers": [{"url": "/"}],
    "components": {
        "schemas": SCHEMAS,
        "parameters": {
            "slug": parameter(
                "slug",
                "path",
                {"type": "string", "pattern": "^[^/]+$"},
                description="A source's slug.",
                example="my-files",
            ),
            "file_id": parameter(
                "file_id",
                "path",
                {"type": "string", "pattern": "^df-[0-9a-z]{1,61}$"},
                description="df- and a lowercase ULID.",
                example=FILE_ID_EXAMPLE,
            ),
            "job_id": parameter(
                "job_id",
                "path",
                {"type": "string", "pattern": "^imp-[0-9a-z]+$"},
                example="imp-01jdq3w4x2m5r8k9t7v6b4n3c2",
            ),
        },
        "responses": {
            f"E{status}": json_response(
                description, ref("Error"), {**ERROR_EXAMPLE, "status": status}
            )
            for status, description in ERROR_STATUSES.items()
        },
        "securitySchemes": {
            "cookie": {"type": "apiKey", "in": "cookie", "name": "ds_actor"},
            "token": {"type": "http", "scheme": "bearer"},
        },
    },
    "security": [{}, {"cookie": []}, {"token": []}],
    "paths": PATHS,
}

# A POST endpoint asked with another method answers 405.
for _item in PATHS.values():
    if "post" in _item:
        _item["post"]["responses"].setdefault("405", errors(405)["405"])


def document(datasette) -> dict:
    """The document with ``servers`` set to this Datasette's base_url."""
    doc = copy.deepcopy(DOCUMENT)
    base = datasette.urls.path("/").rstrip("/") or "/"
    doc["servers"] = [{"url": base, "description": "This Datasette"}]
    return doc


async def openapi_view(datasette):
    return Response.json(document(datasette))
