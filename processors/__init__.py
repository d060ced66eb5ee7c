"""The imperative shell: Lambda handlers, the local runtime and the CLI."""
