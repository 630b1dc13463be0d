"""Sync: register the files a source already holds (``datasette files sync``).

- ``store``: sync jobs and the batch writes, in the internal database;
- ``engine``: list the storage page by page and turn each page into a batch;
- ``sniff``: a content type from the first bytes;
- ``cli``: the ``datasette files sync`` command;
- ``views``: the HTTP job, its progress page and JSON.
"""
