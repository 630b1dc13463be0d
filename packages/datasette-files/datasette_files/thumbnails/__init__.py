"""Thumbnails: generators, their policy, the cache and the scheduler.

The public surface for plugins that add generators through the
``register_thumbnail_generators`` hook: ``Thumbnail``, ``ThumbnailSkipped``,
``ThumbnailFailed``, ``ThumbnailPolicy`` and ``run_limited``.
"""

from .generators import Thumbnail, ThumbnailFailed, ThumbnailSkipped
from .policy import ThumbnailPolicy
from .process import Finished, run_limited

__all__ = [
    "Finished",
    "Thumbnail",
    "ThumbnailFailed",
    "ThumbnailPolicy",
    "ThumbnailSkipped",
    "run_limited",
]
