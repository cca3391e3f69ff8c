-- Static assets of every build that has run (stage 6). A node stores its
-- own fingerprinted files here before it takes traffic, so that during a
-- rolling deploy any node can serve the assets a page of another build
-- links to. Same table as the SQLite version; times are Unix seconds.
CREATE TABLE static_assets (
    file         text   PRIMARY KEY,  -- fingerprinted name, e.g. app.1a2b3c4d5e6f.css
    content_type text   NOT NULL,
    body         bytea  NOT NULL,
    seen_at      bigint NOT NULL      -- last start (or daily refresh) of a build that has it
);
CREATE INDEX static_assets_seen_idx ON static_assets (seen_at);
