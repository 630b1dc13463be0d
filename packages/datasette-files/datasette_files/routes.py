"""URL routes: one table, read top to bottom like the HTTP API docs."""

from .imports import views as imports
from .sync import views as sync
from .views import debug, files, search, sources, thumbnails, upload

SLUG = r"(?P<slug>[^/]+)"
# "df-" alone too, so that it gets this plugin's JSON 404.
FILE_ID = r"(?P<file_id>df-[^/.]*)"
JOB_ID = r"(?P<job_id>imp-[0-9a-z]+)"

ROUTES = [
    (r"^/-/files$", sources.index_view),
    (r"^/-/files/sources\.json$", sources.sources_json_view),
    (r"^/-/files/batch\.json$", files.batch_view),
    (r"^/-/files/search\.json$", search.search_json_view),
    (r"^/-/files/search$", search.search_page_view),
    (r"^/-/files/storages$", debug.storages_view),
    (rf"^/-/files/storages/list/{SLUG}$", debug.storage_list_view),
    (rf"^/-/files/source/{SLUG}\.json$", sources.source_json_view),
    (rf"^/-/files/source/{SLUG}$", sources.source_page_view),
    (rf"^/-/files/source/{SLUG}/-/sync(?:\.json)?$", sync.sync_view),
    (rf"^/-/files/upload/{SLUG}$", sources.upload_page_view),
    (rf"^/-/files/upload/{SLUG}/-/prepare$", upload.prepare_view),
    (rf"^/-/files/upload/{SLUG}/-/upload$", upload.upload_view),
    (rf"^/-/files/upload/{SLUG}/-/parts$", upload.parts_view),
    (rf"^/-/files/upload/{SLUG}/-/complete$", upload.complete_view),
    (rf"^/-/files/upload/{SLUG}/-/abort$", upload.abort_view),
    (rf"^/-/files/{FILE_ID}\.json$", files.file_json_view),
    (rf"^/-/files/{FILE_ID}$", files.file_page_view),
    (rf"^/-/files/{FILE_ID}/download$", files.download_view),
    (rf"^/-/files/{FILE_ID}/thumbnail$", thumbnails.thumbnail_view),
    (rf"^/-/files/{FILE_ID}/-/update$", files.update_view),
    (rf"^/-/files/{FILE_ID}/-/delete$", files.delete_view),
    (rf"^/-/files/{FILE_ID}/-/import(?P<format>\.json)?$", imports.import_view),
    (rf"^/-/files/imports/{JOB_ID}\.json$", imports.job_json_view),
    (rf"^/-/files/imports/{JOB_ID}$", imports.job_page_view),
]
