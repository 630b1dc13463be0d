"""S3 storage for datasette-files."""
