-- Nothing to do: PostgreSQL's search moves to a table of its own (see the
-- PostgreSQL migration); SQLite's FTS5 index (0009) stays as it is.
SELECT 1;
