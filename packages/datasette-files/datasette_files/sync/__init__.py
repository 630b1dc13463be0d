"""Sync: register the files a source already holds (``datasette files sync``).

- ``store``: sync jobs and the batch writes, in the internal database;
- ``engine``: list the storage page by page and turn each page into a batch;
- ``rows``: ids, times and change stamps of listed objects;
- ``owners``: which process runs a sync, and whether it is gone;
- ``jobs``: syncs started over HTTP, run as background tasks;
- ``sniff``: a content type from the first bytes;
- ``cli``: the ``datasette files sync`` command;
- ``views``: the HTTP routes that start a sync and report its progress.
"""
