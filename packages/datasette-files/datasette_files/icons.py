"""SVG type icons: the thumbnail for files without a generated preview."""

from __future__ import annotations

from html import escape

COLOURS = {
    "image": "#2f855a",
    "video": "#6b46c1",
    "audio": "#b7791f",
    "text": "#2b6cb0",
    "application": "#4a5568",
}


def type_label(filename: str, content_type: str | None) -> str:
    _, dot, ext = filename.rpartition(".")
    if dot and 0 < len(ext) <= 5 and ext.isalnum():
        return ext.upper()
    if content_type and "/" in content_type:
        return content_type.split("/")[1][:5].upper()
    return "FILE"


def type_icon_svg(filename: str, content_type: str | None) -> str:
    major = (content_type or "application/octet-stream").split("/")[0]
    colour = COLOURS.get(major, COLOURS["application"])
    label = escape(type_label(filename, content_type))
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" '
        'viewBox="0 0 96 96" role="img" aria-label="' + label + ' file">'
        '<path d="M20 6h40l20 20v64H20z" fill="#fff" stroke="' + colour + '" '
        'stroke-width="4"/><path d="M60 6v20h20" fill="none" stroke="' + colour + '" '
        'stroke-width="4"/><rect x="12" y="52" width="72" height="24" rx="3" fill="'
        + colour
        + '"/><text x="48" y="69" font-family="sans-serif" font-size="14" '
        'font-weight="bold" fill="#fff" text-anchor="middle">' + label + "</text></svg>"
    )
