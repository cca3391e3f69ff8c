package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/conduit-dev/conduit/internal/config"
	"github.com/conduit-dev/conduit/internal/store"
)

const copySummary = `Copies all data of a stage-1 server (the SQLite database in --from-data-dir)
into an empty PostgreSQL database (--database-url), which is migrated first.
Ids, password hashes, slugs, follows, favorites, comments and timestamps are
kept; row counts are verified before the copy is committed. Text that is
not valid UTF-8 or holds NUL (stage 1 stored it, PostgreSQL refuses it) is
copied with U+FFFD in place of each bad sequence, and reported. Stop the
stage-1 server first. The signing key stays in the data dir: give it to the new
servers (--jwt-keys "$(cat DATA_DIR/jwt.keys)") so issued tokens stay valid.`

// copyData is the "copy" subcommand: stage 1 -> stage 2.
func copyData(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Parse("copy", copySummary,
		[]string{"from-data-dir", "database-url", "db-connect-timeout"}, args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("conduit copy: --database-url (the PostgreSQL target) is required")
	}
	srcPath := filepath.Join(cfg.FromDataDir, "conduit.db")
	if _, err := os.Stat(srcPath); err != nil {
		return fmt.Errorf("conduit copy: no stage-1 database at %s: %w", srcPath, err)
	}
	src, err := store.OpenSQLite(ctx, srcPath)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := store.OpenPostgres(ctx, cfg.DatabaseURL, store.PostgresOptions{MaxConns: 2, ConnectTimeout: cfg.DBConnectTimeout})
	if err != nil {
		return err
	}
	defer dst.Close()
	if n, err := dst.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate target: %w", err)
	} else if n > 0 {
		fmt.Fprintf(stderr, "migrated %s: %d migration(s) applied\n", config.MaskURL(cfg.DatabaseURL), n)
	}

	fmt.Fprintf(stderr, "copying %s -> %s\n", srcPath, config.MaskURL(cfg.DatabaseURL))
	start := time.Now()
	counts, err := store.CopyToPostgres(ctx, src, dst, newProgress(stderr))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-14s %12s %12s\n", "table", "sqlite", "postgres")
	for _, c := range counts {
		fmt.Fprintf(stdout, "%-14s %12d %12d\n", c.Table, c.Source, c.Target)
	}
	for _, c := range counts {
		if c.Repaired > 0 {
			fmt.Fprintf(stdout, "%s: %d value(s) were not valid UTF-8 text (or held NUL); copied with U+FFFD in place of the bad bytes\n", c.Table, c.Repaired)
		}
		if c.Merged > 0 {
			fmt.Fprintf(stdout, "%s: %d row(s) equal to another once repaired were copied once\n", c.Table, c.Merged)
		}
	}
	fmt.Fprintf(stdout, "copied and verified in %v; row counts match.\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "next: serve with --database-url and the signing key of the old server, e.g. --jwt-keys \"$(cat %s)\"\n",
		filepath.Join(cfg.FromDataDir, "jwt.keys"))
	return nil
}

// newProgress prints one line per table, redrawn in place on a terminal
// and at most every 10% otherwise.
func newProgress(w io.Writer) func(store.CopyProgress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	lastTenth := int64(-1)
	finished := map[string]bool{}
	return func(p store.CopyProgress) {
		if finished[p.Table] {
			return
		}
		pct := int64(100)
		if p.Total > 0 {
			pct = p.Done * 100 / p.Total
		}
		line := fmt.Sprintf("%-14s %10d / %d rows (%3d%%)", p.Table, p.Done, p.Total, pct)
		done := p.Done >= p.Total
		switch {
		case tty:
			fmt.Fprint(w, "\r"+line)
			if done {
				fmt.Fprintln(w)
			}
		case done || pct/10 != lastTenth:
			fmt.Fprintln(w, line)
		}
		lastTenth = pct / 10
		if done {
			lastTenth = -1
			finished[p.Table] = true
		}
	}
}
