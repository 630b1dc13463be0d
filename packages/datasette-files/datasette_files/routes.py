"""URL routes: one table, read top to bottom like the HTTP API docs."""

from . import openapi
from .imports import views as imports
from .sync import views as sync
from .views import common, debug, files, search, sources, thumbnails, upload
from .views.common import allow

SLUG = r"(?P<slug>[^/]+)"
# "df-" alone too, so that it gets this plugin's JSON 404.
FILE_ID = r"(?P<file_id>df-[^/.]*)"
JOB_ID = r"(?P<job_id>imp-[0-9a-z]+)"

# Routes wrapped in allow() answer other methods with a 405 and an Allow
# header; the rest accept any method.
ROUTES = [
    (r"^/-/files$", sources.index_view),
    (r"^/-/files/openapi\.json$", openapi.openapi_view),
    (r"^/-/files/sources\.json$", sources.sources_json_view),
    (r"^/-/files/batch\.json$", files.batch_view),
    (r"^/-/files/search\.json$", search.search_json_view),
    (r"^/-/files/search$", search.search_page_view),
    (r"^/-/files/storages$", debug.storages_view),
    (rf"^/-/files/storages/list/{SLUG}$", debug.storage_list_view),
    (rf"^/-/files/source/{SLUG}\.json$", sources.source_json_view),
    (rf"^/-/files/source/{SLUG}$", sources.source_page_view),
    (
        rf"^/-/files/source/{SLUG}/-/sync(?P<format>\.json)?$",
        allow("GET POST", sync.sync_view),
    ),
    (rf"^/-/files/upload/{SLUG}$", sources.upload_page_view),
    (rf"^/-/files/upload/{SLUG}/-/prepare$", allow("POST", upload.prepare_view)),
    (rf"^/-/files/upload/{SLUG}/-/upload$", allow("POST", upload.upload_view)),
    (rf"^/-/files/upload/{SLUG}/-/parts$", allow("POST", upload.parts_view)),
    (rf"^/-/files/upload/{SLUG}/-/complete$", allow("POST", upload.complete_view)),
    (rf"^/-/files/upload/{SLUG}/-/abort$", allow("POST", upload.abort_view)),
    (rf"^/-/files/{FILE_ID}\.json$", files.file_json_view),
    (rf"^/-/files/{FILE_ID}$", files.file_page_view),
    (rf"^/-/files/{FILE_ID}/download$", files.download_view),
    (rf"^/-/files/{FILE_ID}/thumbnail$", thumbnails.thumbnail_view),
    (rf"^/-/files/{FILE_ID}/-/update$", allow("POST", files.update_view)),
    (rf"^/-/files/{FILE_ID}/-/delete$", allow("POST", files.delete_view)),
    (
        rf"^/-/files/{FILE_ID}/-/import(?P<format>\.json)?$",
        allow("GET POST", imports.import_view),
    ),
    (rf"^/-/files/imports/{JOB_ID}\.json$", imports.job_json_view),
    (rf"^/-/files/imports/{JOB_ID}$", imports.job_page_view),
    # Last: everything else under /-/files is a 404 in our error shape.
    (r"(?s)^/-/files/.*$", common.not_found_view),
]
