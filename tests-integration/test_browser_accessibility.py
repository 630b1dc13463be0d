"""Keyboard use, labels for assistive technology, and phone-sized screens."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

MB = 1024 * 1024
PHONE = 375


def tab_to(page, name: str, limit: int = 40):
    """Press Tab until the focused element's accessible name is ``name``."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                return (el.getAttribute('aria-label') || el.textContent || '').trim();
            }"""
        )
        if focused == name:
            return page.locator(":focus")
    raise AssertionError(f"Tab never reached {name!r}")


def has_visible_focus(locator) -> bool:
    return locator.evaluate(
        """el => {
            const style = getComputedStyle(el);
            return el.matches(':focus-visible') && style.outlineStyle !== 'none'
                && parseFloat(style.outlineWidth) >= 2;
        }"""
    )


def test_upload_with_the_keyboard_alone(
    start_datasette, open_page, uploads, make_file, throttle
):
    server = start_datasette()
    big = make_file("survey.zip", 10 * MB)
    small = make_file("notes.md", 2000)
    page = open_page(server, "/-/files/upload/files")
    throttle(page, 2 * MB)
    upload = uploads(page)

    picker = tab_to(page, "Choose files…")
    assert has_visible_focus(picker)
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files([str(big), str(small)])

    expect(upload.item("notes.md").locator(".dfu-status")).to_have_text("Uploaded")
    cancel = tab_to(page, "Cancel survey.zip")
    assert has_visible_focus(cancel)
    page.keyboard.press("Enter")
    expect(upload.item("survey.zip").locator(".dfu-status")).to_have_text("Cancelled")
    # Focus moves to the button that replaced the one pressed.
    retry = page.locator(":focus")
    expect(retry).to_have_accessible_name("Retry survey.zip")
    assert has_visible_focus(retry)
    page.keyboard.press("Space")
    expect(upload.summary()).to_have_text("2 of 2 uploaded", timeout=30_000)
    assert sorted(f["filename"] for f in server.files()) == ["notes.md", "survey.zip"]


def test_controls_are_labelled_and_progress_is_announced(
    start_datasette, open_page, uploads, make_file, throttle
):
    server = start_datasette()
    page = open_page(server, "/-/files/upload/files")
    throttle(page, 1 * MB)
    upload = uploads(page)
    upload.pick([make_file("a.csv", 3 * MB), make_file("b.csv", 1000)])

    expect(page.get_by_role("progressbar", name="Upload of a.csv")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Upload of b.csv")).to_be_visible()
    expect(page.get_by_role("progressbar", name="All uploads")).to_be_visible()
    expect(
        page.get_by_role("list", name="Uploads").get_by_role("listitem")
    ).to_have_count(2)
    # One polite live region carries the counts, not every progress tick.
    live = page.locator("datasette-file-uploader [aria-live]")
    expect(live).to_have_count(1)
    expect(live).to_have_attribute("aria-live", "polite")
    expect(live).to_have_attribute("role", "status")
    expect(live).to_have_text("1 of 2 uploaded, 1 in progress")
    for button in page.get_by_role("button").all():
        if button.is_visible():
            assert button.evaluate(
                "b => b.textContent.trim() || b.getAttribute('aria-label')"
            )
    upload.item("a.csv").get_by_role("button", name="Cancel a.csv").click()
    expect(live).to_have_text("1 of 2 uploaded, 1 cancelled")

    file = server.files()[0]
    page.goto(server.url(f"/-/files/{file['id']}"))
    expect(page.get_by_label("Edit search text")).to_be_editable()
    expect(page.get_by_role("link", name="Download")).to_be_visible()


def test_pages_fit_a_phone_screen(
    start_datasette, open_page, uploads, make_file, make_png, throttle
):
    server = start_datasette(
        sources={"files": {}, "a-source-with-a-rather-long-name": {}}
    )
    long_name = "quarterly-financial-statements-and-board-minutes-" * 3 + "final.pdf"
    server.upload("files", long_name, b"%PDF")
    image = server.upload(
        "files",
        "wide.png",
        make_png("wide.png", 1600, 400).read_bytes(),
        content_type="image/png",
    )
    for n in range(3):
        server.upload(
            "files", f"photo-{n}.jpg", b"jpg" * 1000, content_type="image/jpeg"
        )

    page = open_page(server, "/-/files/source/files", width=PHONE, height=800)
    throttle(page, 1 * MB)
    uploads(page).pick([make_file(long_name.replace(".pdf", ".zip"), 2 * MB)])
    uploads(page).wait_for_progress(long_name.replace(".pdf", ".zip"), above=5)

    pages = [
        page.url,
        server.url("/-/files"),
        server.url("/-/files/upload/files"),
        server.url(f"/-/files/{image['id']}"),
        server.url(f"/-/files/{server.files()[0]['id']}"),
        server.url("/-/files/search?q=photo"),
    ]
    for index, url in enumerate(pages):
        if index:
            page.goto(url)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE, f"{url} is {width}px wide at {PHONE}px"
