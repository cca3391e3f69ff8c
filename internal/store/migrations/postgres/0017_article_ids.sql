-- Nothing to do: PostgreSQL pages the global list's ids by offset from
-- articles_pkey (an index-only scan), not from the table; SQLite needs
-- an index of the ids apart from its rowid table (see its migration).
SELECT 1;
