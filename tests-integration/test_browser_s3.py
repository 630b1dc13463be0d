"""Uploading from the browser straight into S3 (a real SeaweedFS).

The same upload component as for filesystem sources; prepare tells it to POST
small files to a presigned URL and to PUT large ones to S3 in parts. The
bytes never pass through Datasette: the browser reaches Datasette only
through a relay that counts what it sends.
"""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MB = 1024 * 1024
# Above 8 MiB: multipart, in parts of 5 MiB (S3's smallest).
MULTIPART = {"multipart_threshold": 8 * MB, "multipart_part_size": 5 * MB}


def download_sha256(server, file_url: str) -> str:
    """Download as alice: Datasette redirects to a presigned S3 URL."""
    digest = hashlib.sha256()
    with server.client() as client:
        with client.stream("GET", file_url + "/download") as response:
            assert response.status_code == 302
            location = response.headers["location"]
        assert location.startswith(client.base_url.scheme + "://")
        with client.stream("GET", location) as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
    return digest.hexdigest()


def test_six_files_go_straight_to_s3(
    start_datasette,
    counting_relay,
    open_page,
    uploads,
    make_file,
    sha256,
    s3_bucket,
    seaweedfs,
):
    source = s3_bucket.source(**MULTIPART)
    server = start_datasette(sources={"photos": source})
    picked = [
        make_file("cover.jpg", 150_000),
        make_file("notes.txt", 7),
        make_file("empty.log", 0),
        make_file("scan.pdf", 3 * MB),
        make_file("audio.flac", 9 * MB),
        make_file("film.mov", 50 * MB),
    ]
    total = sum(p.stat().st_size for p in picked)
    relay = counting_relay(server)
    page = open_page(relay, "/-/files/source/photos")
    sent = []
    page.on("request", lambda r: sent.append((r.method, r.url)))
    upload = uploads(page)
    received_before = relay.to_server

    upload.pick(picked)

    expect(upload.summary()).to_have_text("6 of 6 uploaded", timeout=120_000)
    # prepare, parts and complete calls: a few kilobytes, not 65 MB.
    sent_to_datasette = relay.to_server - received_before
    assert sent_to_datasette < 100_000, (sent_to_datasette, total)
    for path in picked:
        expect(upload.item(path.name).get_by_role("progressbar")).to_have_js_property(
            "value", 100
        )
    # Small files: one presigned POST each, to SeaweedFS, not to Datasette.
    posts = [
        url
        for method, url in sent
        if method == "POST" and seaweedfs.endpoint_url in url
    ]
    assert len(posts) == 4
    # The 50 MB film: ten 5 MiB parts, PUT straight to SeaweedFS.
    parts = [url for method, url in sent if method == "PUT" and "partNumber=" in url]
    assert all(url.startswith(seaweedfs.endpoint_url) for url in parts)
    assert len(parts) == 2 + 10
    assert not any("/-/upload" in url for _, url in sent)

    page.reload()
    expect(page.locator(".files-listing tbody tr")).to_have_count(6)
    stored = {row["filename"]: row for row in server.files("photos")}
    objects = s3_bucket.objects(source)
    for path in picked:
        row = stored[path.name]
        assert row["size"] == path.stat().st_size
        assert objects[source["config"]["prefix"] + "/" + row["path"]] == row["size"]
        assert download_sha256(server, f"/-/files/{row['id']}") == sha256(path), path
    assert server.pending_uploads() == []
    assert s3_bucket.multipart_uploads(source) == []


def test_parts_go_four_at_a_time_and_a_refused_part_is_retried(
    start_datasette, open_page, uploads, make_file, sha256, throttle, s3_bucket
):
    source = s3_bucket.source(**MULTIPART)
    server = start_datasette(sources={"photos": source})
    path = make_file("archive.tar", 28 * MB)
    page = open_page(server, "/-/files/upload/photos")
    throttle(page, 10 * MB)
    part_two = re.compile(r"[?&]partNumber=2(&|$)")
    part_two_puts = []
    page.on(
        "request",
        lambda request: (
            request.method == "PUT"
            and part_two.search(request.url)
            and part_two_puts.append(request)
        ),
    )
    # Parts in flight, counted in the page: the browser's own network events
    # can report a part finished after the next one started.
    page.evaluate(
        """() => {
            const parts = (window.partsInFlight = { now: 0, most: 0 });
            const send = XMLHttpRequest.prototype.send;
            XMLHttpRequest.prototype.send = function (body) {
                parts.now += 1;
                parts.most = Math.max(parts.most, parts.now);
                this.addEventListener("loadend", () => { parts.now -= 1; });
                return send.call(this, body);
            };
        }"""
    )
    # S3 (or the network) refuses part 2 once.
    page.route(part_two, lambda route: route.abort(), times=1)
    upload = uploads(page)

    upload.pick([path])

    expect(upload.summary()).to_have_text("1 of 1 uploaded", timeout=60_000)
    assert page.evaluate("window.partsInFlight.most") == 4
    assert len(part_two_puts) == 2
    file = server.files("photos")[0]
    assert download_sha256(server, f"/-/files/{file['id']}") == sha256(path)
    assert s3_bucket.multipart_uploads(source) == []


def test_a_part_refused_every_time_fails_the_upload_cleanly(
    start_datasette, open_page, uploads, make_file, s3_bucket, eventually
):
    source = s3_bucket.source(**MULTIPART)
    server = start_datasette(sources={"photos": source})
    path = make_file("dataset.parquet", 24 * MB)
    page = open_page(server, "/-/files/upload/photos")
    part_number = re.compile(r"[?&]partNumber=(\d+)")
    parts_sent, parts_failed = set(), set()

    def record(parts):
        def add(request):
            if request.method == "PUT":
                parts.add(int(part_number.search(request.url).group(1)))

        return add

    page.on("request", record(parts_sent))
    page.on("requestfailed", record(parts_failed))
    page.route(re.compile(r"[?&]partNumber=2(&|$)"), lambda route: route.abort())
    # The other parts are held in flight (never answered), so that part 2
    # runs out of attempts while they are still sending, however slow the
    # machine: those must be stopped when the upload fails.
    held = []
    page.route(
        re.compile(r"[?&]partNumber=[13-9](&|$)"), lambda route: held.append(route)
    )
    upload = uploads(page)

    upload.pick([path])

    item = upload.item("dataset.parquet")
    expect(item.locator(".dfu-status")).to_have_text(
        "The connection failed during the upload"
    )
    expect(item.get_by_role("button", name="Retry dataset.parquet")).to_be_visible()
    # The parts in flight were stopped, not left to finish; the fifth never
    # started.
    eventually(lambda: parts_failed == {1, 2, 3, 4}, message=f"{parts_failed}")
    assert parts_sent == {1, 2, 3, 4}
    eventually(
        lambda: (
            not server.pending_uploads() and not s3_bucket.multipart_uploads(source)
        ),
        message="the multipart upload to be aborted",
    )
    assert s3_bucket.objects(source) == {}


def test_cancelled_multipart_upload_leaves_nothing_in_the_bucket(
    start_datasette, open_page, uploads, make_file, throttle, s3_bucket, eventually
):
    source = s3_bucket.source(**MULTIPART)
    server = start_datasette(sources={"photos": source})
    path = make_file("backup.img", 20 * MB)
    page = open_page(server, "/-/files/upload/photos")
    throttle(page, 3 * MB)
    upload = uploads(page)

    upload.pick([path])
    upload.wait_for_progress("backup.img", above=30)
    assert len(s3_bucket.multipart_uploads(source)) == 1
    upload.item("backup.img").get_by_role("button", name="Cancel backup.img").click()

    expect(upload.item("backup.img").locator(".dfu-status")).to_have_text("Cancelled")
    eventually(
        lambda: (
            not server.pending_uploads() and not s3_bucket.multipart_uploads(source)
        ),
        message="the multipart upload to be aborted",
    )
    assert s3_bucket.objects(source) == {}
    assert server.files() == []


def test_backend_down_is_a_clear_message(
    start_datasette, open_page, uploads, make_file, s3_bucket
):
    # Nothing listens on this endpoint: the source starts unavailable.
    down = s3_bucket.source(endpoint_url="http://127.0.0.1:9")
    server = start_datasette(sources={"offsite": down})
    page = open_page(server, "/-/files/upload/offsite")
    expect(page.locator(".message-error")).to_contain_text("unavailable right now")
    upload = uploads(page)

    upload.pick([make_file("ledger.xlsx", 1000)])

    status = upload.item("ledger.xlsx").locator(".dfu-status")
    expect(status).to_have_text(
        re.compile(
            r"^Storage is unavailable right now, try again later: "
            r"Source 'offsite' is unavailable: .+"
        )
    )
    expect(
        upload.item("ledger.xlsx").get_by_role("button", name="Retry ledger.xlsx")
    ).to_be_visible()
    assert server.pending_uploads() == []
