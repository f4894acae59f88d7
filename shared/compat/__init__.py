"""Where taskforce reaches into a library's private parts: one module per library, each naming
the version it was written against, so that an upgrade knows what to read again."""
