-- Nothing to do: on PostgreSQL article and comment ids come from
-- sequences, which never give an id twice (see the SQLite migration).
SELECT 1;
