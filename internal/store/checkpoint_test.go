package store

import (
	"context"
	"encoding/binary"
	"os"
	"sync"
	"testing"
	"time"
)

// openCheckpointTest opens a store whose writer finishes a checkpoint once
// the WAL holds restart frames, with a table to write to.
func openCheckpointTest(t *testing.T, restart int64) (*DB, string) {
	// (the fields are read only after the first commit)
	t.Helper()
	db, path := openTestSQLite(t)
	db.ckpt.restartFrames = restart
	db.ckpt.interval = 5 * time.Millisecond
	db.ckpt.stuckRetry = 50 * time.Millisecond
	if _, err := db.write.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// insertRows writes n rows of size bytes in one write transaction (a
// group's turn, as the store's writes).
func insertRows(ctx context.Context, db *DB, n, size int) error {
	return db.runTx(ctx, func(st *sqlTx) error {
		for range n {
			if _, err := st.tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (randomblob(?))`, size); err != nil {
				return err
			}
		}
		return nil
	})
}

// walHeader is the WAL file's size and its checkpoint sequence number,
// which SQLite increments each time the WAL restarts from its beginning.
func walHeader(t *testing.T, path string) (size int64, restarts uint32) {
	t.Helper()
	b, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 {
		return int64(len(b)), 0
	}
	return int64(len(b)), binary.BigEndian.Uint32(b[12:16])
}

// Under writes that never pause and readers that never stop, the WAL
// still starts over again and again, so its file stays a fraction of what
// was written: the background checkpoints copy it while the writer goes
// on, and the writer finishes one between groups once it is long. Without
// that the WAL would only restart at wal_autocheckpoint (16,000 pages),
// which these writes do not reach: it would hold all of them.
func TestCheckpointerKeepsWALBounded(t *testing.T) {
	db, path := openCheckpointTest(t, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard only
	defer cancel()
	_, restarts0 := walHeader(t, path)

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Short reads, one after another without a pause, as
				// the server's: a reader of a whole table would hold
				// its snapshot longer than the writer waits.
				var n int
				if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT id FROM t ORDER BY id DESC LIMIT 50)`).Scan(&n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	const writers, txs, rows, size = 16, 40, 8, 4000 // ~20 MB
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range txs {
				if err := insertRows(ctx, db, rows, size); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	wal, restarts := walHeader(t, path)
	written := int64(writers * txs * rows * size)
	t.Logf("wrote %d MB; WAL file %d KB, restarted %d times; %d background checkpoints, %d between groups (%d RESTART)",
		written>>20, wal>>10, restarts-restarts0, db.ckpt.background.Load(), db.ckpt.finished.Load(), db.ckpt.forced.Load())
	if wal > written/4 {
		t.Errorf("the WAL file grew to %d KB for %d KB written", wal>>10, written>>10)
	}
	if restarts-restarts0 < 2 {
		t.Errorf("the WAL restarted %d times", restarts-restarts0)
	}
	if db.ckpt.background.Load() == 0 || db.ckpt.finished.Load() == 0 {
		t.Errorf("%d background checkpoints, %d between groups: want both", db.ckpt.background.Load(), db.ckpt.finished.Load())
	}
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != writers*txs*rows {
		t.Errorf("%d rows (%v), want %d", n, err, writers*txs*rows)
	}
}

// A reader that keeps an old snapshot stops every checkpoint short of the
// WAL's end, so the WAL cannot restart; the writer's checkpoints between
// groups are PASSIVE and wait for no one, so writes go on meanwhile. Once
// the reader is done, the WAL restarts.
func TestCheckpointerDoesNotBlockWriters(t *testing.T) {
	db, path := openCheckpointTest(t, 50)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard only
	defer cancel()
	if err := insertRows(ctx, db, 1, 10); err != nil {
		t.Fatal(err)
	}

	reader, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	_, restarts0 := walHeader(t, path)
	for range 100 {
		if err := insertRows(ctx, db, 2, 4000); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // room for the background checkpoints
	}
	wal, restarts := walHeader(t, path)
	if restarts != restarts0 {
		t.Fatalf("the WAL restarted while a reader held a snapshot in it")
	}
	if frames := db.ckpt.frames.Load(); frames < db.ckpt.restartFrames {
		t.Fatalf("the WAL holds %d frames after 200 rows of 4 KB; want more than %d (the test writes too little)", frames, db.ckpt.restartFrames)
	}
	if db.ckpt.finished.Load() == 0 {
		t.Error("the writer never tried a checkpoint between groups while the WAL was long")
	}
	// The reader's snapshot is the one it began with.
	if err := reader.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the reader sees %d rows (%v), want the 1 of its snapshot", n, err)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}

	for i := 0; restarts == restarts0 && i < 200; i++ {
		if err := insertRows(ctx, db, 2, 4000); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
		_, restarts = walHeader(t, path)
	}
	if restarts == restarts0 {
		t.Errorf("the WAL (%d KB) never restarted after the reader was done", wal>>10)
	}
}

// Close stops the checkpointer's goroutine and closes its connection.
func TestCheckpointerStopsOnClose(t *testing.T) {
	db, _ := openCheckpointTest(t, 50)
	if err := insertRows(context.Background(), db, 10, 4000); err != nil {
		t.Fatal(err)
	}
	c := db.ckpt
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	default:
		t.Error("Close returned with the checkpointer still running")
	}
	if err := c.conn.Ping(); err == nil {
		t.Error("the checkpointer's connection is still open after Close")
	}
}
