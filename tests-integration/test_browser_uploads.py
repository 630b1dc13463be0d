"""Uploading files into a filesystem source with the browser's upload component.

Each test starts a real ``datasette serve``, opens the upload area in headless
Chromium as alice, picks files the way a person does and checks what they see,
then what landed on the server.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MB = 1024 * 1024

SOURCE_PAGE = "/-/files/source/files"
UPLOAD_PAGE = "/-/files/upload/files"


def downloaded_sha256(server, page, filename: str) -> str:
    """Follow the file's Download link (as alice) and hash what comes back."""
    page.goto(server.url(SOURCE_PAGE))
    page.get_by_role("link", name=filename, exact=True).click()
    href = page.get_by_role("link", name="Download").get_attribute("href")
    digest = hashlib.sha256()
    with server.client() as client, client.stream("GET", href) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


# Records each "datasette-files:uploaded" DOM event heard on document.
RECORD_UPLOADED_EVENTS = """() => {
    window.uploadedEvents = [];
    document.addEventListener("datasette-files:uploaded", (event) => {
        window.uploadedEvents.push({
            id: event.detail.file.id,
            filename: event.detail.file.filename,
            bubbles: event.bubbles,
            composed: event.composed,
        });
    });
}"""


def uploaded_events(page) -> list[dict]:
    return page.evaluate("() => window.uploadedEvents")


def test_six_files_upload_and_download_intact(
    start_datasette, open_page, uploads, make_file, sha256
):
    server = start_datasette()
    picked = [
        make_file("report.pdf", 120_000),
        make_file("photo.jpg", 2 * MB),
        make_file("notes.txt", 5),
        make_file("empty.csv", 0),
        make_file("résumé (final) #2.docx", 300_000),
        make_file("video.mp4", 50 * MB),
    ]
    page = open_page(server, SOURCE_PAGE)
    expect(page.get_by_text("No files yet.")).to_be_visible()
    upload = uploads(page)

    upload.pick(picked)

    expect(upload.summary()).to_have_text("6 of 6 uploaded", timeout=120_000)
    for path in picked:
        item = upload.item(path.name)
        expect(item.get_by_role("progressbar")).to_have_js_property("value", 100)
        expect(
            item.get_by_role("link", name=f"Uploaded: view {path.name}")
        ).to_be_visible()
        # The listing below the upload area shows it without a reload ...
        expect(
            page.locator(".files-listing").get_by_role(
                "link", name=path.name, exact=True
            )
        ).to_be_visible()
    expect(page.get_by_role("progressbar", name="All uploads")).to_have_js_property(
        "value", 100
    )
    # ... and so does the page itself.
    page.reload()
    listing = page.locator(".files-listing tbody tr")
    expect(listing).to_have_count(6)
    expect(listing.filter(has_text="video.mp4")).to_contain_text("50.0 MB")
    expect(listing.filter(has_text="video.mp4")).to_contain_text("alice")

    for path in picked:
        assert downloaded_sha256(server, page, path.name) == sha256(path), path
    assert not server.pending_uploads()


def test_cancel_half_way_leaves_nothing_behind(
    start_datasette, open_page, uploads, make_file, throttle, eventually
):
    server = start_datasette()
    big = make_file("big.iso", 12 * MB)
    page = open_page(server, UPLOAD_PAGE)
    throttle(page, 2 * MB)
    upload = uploads(page)

    upload.pick([big])
    upload.wait_for_progress("big.iso", above=15)

    # Mid-upload: percentage, speed and time left.
    expect(upload.item("big.iso").locator(".dfu-status")).to_have_text(
        re.compile(r"^\d+% · [\d.]+ (KB|MB)/s · \d+s left$")
    )
    expect(upload.summary()).to_have_text("0 of 1 uploaded, 1 in progress")
    assert len(server.pending_uploads()) == 1
    upload.item("big.iso").get_by_role("button", name="Cancel big.iso").click()

    expect(upload.item("big.iso").locator(".dfu-status")).to_have_text("Cancelled")
    expect(
        upload.item("big.iso").get_by_role("button", name="Retry big.iso")
    ).to_be_focused()
    expect(upload.summary()).to_have_text("0 of 1 uploaded, 1 cancelled")
    root = server.source_root("files")
    eventually(
        lambda: not server.pending_uploads() and not any(root.iterdir()),
        message=f"pending rows {server.pending_uploads()} / files {list(root.iterdir())}",
    )
    assert server.files() == []
    # Nothing more arrives later either.
    page.wait_for_timeout(1000)
    assert not any(root.iterdir())


def test_a_non_json_error_is_shown_as_plain_text(
    start_datasette, open_page, uploads, make_file
):
    server = start_datasette()
    page = open_page(server, UPLOAD_PAGE)
    # A proxy in front of the storage answers with an HTML page, not JSON.
    page.route(
        "**/-/files/upload/files/-/upload",
        lambda route: route.fulfill(
            status=502,
            content_type="text/html",
            body="<html><body><h1>Bad   Gateway</h1>\n<p>upstream went away</p>"
            + "x" * 500
            + "</body></html>",
        ),
        times=1,
    )
    upload = uploads(page)

    upload.pick([make_file("notes.txt", 1000)])

    status = upload.item("notes.txt").locator(".dfu-status")
    expect(status).to_have_text(
        re.compile(
            r"^the storage answered HTTP 502: Bad Gateway upstream went away x{169}$"
        )
    )
    assert server.files() == []


def test_failed_upload_can_be_retried(
    start_datasette, open_page, uploads, make_file, sha256
):
    server = start_datasette()
    path = make_file("minutes.txt", 200_000)
    page = open_page(server, UPLOAD_PAGE)
    # The first attempt to send the bytes dies on the network.
    page.route("**/-/files/upload/files/-/upload", lambda route: route.abort(), times=1)
    page.evaluate(RECORD_UPLOADED_EVENTS)
    upload = uploads(page)

    upload.pick([path])

    item = upload.item("minutes.txt")
    expect(item.locator(".dfu-status")).to_have_text(
        "The connection failed during the upload"
    )
    expect(item.get_by_role("alert")).to_be_visible()
    expect(upload.summary()).to_have_text("0 of 1 uploaded, 1 failed")
    assert uploaded_events(page) == []
    item.get_by_role("button", name="Retry minutes.txt").click()

    expect(upload.summary()).to_have_text("1 of 1 uploaded")
    # One event for the file, from the attempt that finished.
    assert [e["filename"] for e in uploaded_events(page)] == ["minutes.txt"]
    expect(item.get_by_role("progressbar")).to_have_js_property("value", 100)
    assert downloaded_sha256(server, page, "minutes.txt") == sha256(path)
    # The failed attempt's pending upload was released, not left to expire.
    assert server.pending_uploads() == []
    assert len(server.files()) == 1


def test_at_most_four_files_in_flight(
    start_datasette, open_page, uploads, make_file, throttle
):
    server = start_datasette()
    picked = [make_file(f"scan-{n}.tif", 400_000) for n in range(6)]
    page = open_page(server, UPLOAD_PAGE)
    throttle(page, 1 * MB)
    in_flight = set()
    most = []

    def started(request):
        if request.url.endswith("/-/upload"):
            in_flight.add(request)
            most.append(len(in_flight))

    page.on("request", started)
    page.on("requestfinished", lambda request: in_flight.discard(request))
    page.on("requestfailed", lambda request: in_flight.discard(request))
    upload = uploads(page)

    upload.pick(picked)

    expect(upload.summary()).to_have_text("0 of 6 uploaded, 4 in progress, 2 waiting")
    expect(upload.summary()).to_have_text("6 of 6 uploaded", timeout=60_000)
    assert max(most) == 4
    assert len(server.files()) == 6


def test_drag_and_drop(start_datasette, open_page, uploads):
    server = start_datasette()
    page = open_page(server, SOURCE_PAGE)
    zone = page.locator(".dfu-zone")
    page.evaluate(RECORD_UPLOADED_EVENTS)
    dropped = page.evaluate_handle(
        """() => {
            const data = new DataTransfer();
            data.items.add(new File(["first file"], "dropped-1.txt", {type: "text/plain"}));
            data.items.add(new File(["second"], "dropped-2.txt", {type: "text/plain"}));
            return data;
        }"""
    )

    zone.dispatch_event("dragenter", {"dataTransfer": dropped})
    expect(zone).to_have_class(re.compile(r"\bdfu-over\b"))
    zone.dispatch_event("drop", {"dataTransfer": dropped})

    expect(zone).not_to_have_class(re.compile(r"\bdfu-over\b"))
    expect(uploads(page).summary()).to_have_text("2 of 2 uploaded")
    # One bubbling, composed "datasette-files:uploaded" per file, carrying the
    # file JSON from complete.
    events = uploaded_events(page)
    assert sorted(e["filename"] for e in events) == ["dropped-1.txt", "dropped-2.txt"]
    assert all(e["bubbles"] and e["composed"] for e in events), events
    assert sorted(e["id"] for e in events) == sorted(f["id"] for f in server.files())
    page.reload()
    expect(page.get_by_role("link", name="dropped-1.txt")).to_be_visible()
    expect(page.get_by_role("link", name="dropped-2.txt")).to_be_visible()


def test_too_large_refused_before_upload(
    start_datasette, open_page, uploads, make_file
):
    server = start_datasette(sources={"files": {"max_file_size": 1000}})
    page = open_page(server, UPLOAD_PAGE)
    expect(page.get_by_text("Up to 1000 bytes per file")).to_be_visible()
    prepares = []
    page.on("request", lambda r: prepares.append(r) if "/-/prepare" in r.url else None)
    upload = uploads(page)

    upload.pick([make_file("small.txt", 1000), make_file("large.bin", 5000)])

    expect(upload.summary()).to_have_text("1 of 2 uploaded, 1 failed")
    large = upload.item("large.bin")
    expect(large.locator(".dfu-status")).to_have_text(
        "Too large: large.bin is 4.9 KB; this source accepts files up to 1000 bytes"
    )
    # Retrying cannot help, so it is not offered.
    expect(large.get_by_role("button")).to_have_count(0)
    assert len(prepares) == 1


def test_server_messages_for_413_and_403(
    start_datasette, open_page, uploads, make_file
):
    server = start_datasette(
        sources={"files": {"max_file_size": 1000}},
        permissions={
            "files-browse": True,
            "files-upload": {"id": "alice"},
        },
    )
    page = open_page(server, UPLOAD_PAGE)
    # A page that does not know the limit (say, the config changed since it
    # loaded) gets the server's answer to prepare.
    page.locator("datasette-file-uploader").evaluate(
        "uploader => uploader.removeAttribute('max-file-size')"
    )
    upload = uploads(page)
    upload.pick([make_file("large.bin", 5000)])
    expect(upload.item("large.bin").locator(".dfu-status")).to_have_text(
        "Too large: File is 5000 bytes; this source accepts at most 1000"
    )

    # Still on the page, but now signed in as bob, who may not upload.
    server.log_in(page.context, {"id": "bob"})
    upload.pick([make_file("bobs.txt", 10)])
    bobs = upload.item("bobs.txt")
    expect(bobs.locator(".dfu-status")).to_have_text(
        "Not allowed: You may not upload to source 'files'"
    )
    expect(bobs.get_by_role("button", name="Retry bobs.txt")).to_be_visible()
    expect(upload.summary()).to_have_text("0 of 2 uploaded, 2 failed")
    assert server.files() == []
    assert server.pending_uploads() == []
