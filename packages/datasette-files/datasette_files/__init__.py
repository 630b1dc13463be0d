"""datasette-files: file management for Datasette."""
