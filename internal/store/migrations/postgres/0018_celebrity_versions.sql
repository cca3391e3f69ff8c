-- Nothing to do: the versions of the celebrities' articles (see the SQLite
-- migration) serve SQLite's in-process cache of those articles. On
-- PostgreSQL a feed reads them from the database, which keeps its pages
-- cached across commits, and another node's writes would need the version
-- row of a celebrity that every publish job locks.
SELECT 1;
