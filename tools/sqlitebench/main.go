// Command sqlitebench compares the two SQLite drivers we considered on the
// workload Conduit gives them: small write transactions through one
// connection (WAL, synchronous=FULL) and concurrent list-style reads. It is
// its own module so that the driver we did not pick stays out of Conduit's
// go.mod. Run: cd tools/sqlitebench && go run . [-rows N] [-reads N]
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3"
	_ "modernc.org/sqlite"
)

type driver struct {
	name, sqlName, dsn string
}

func main() {
	rows := flag.Int("rows", 3000, "write transactions to time")
	reads := flag.Int("reads", 20000, "list queries to time")
	workers := flag.Int("workers", 4, "concurrent readers")
	reverse := flag.Bool("reverse", false, "run the drivers in the other order")
	flag.Parse()
	dir, err := os.MkdirTemp("", "sqlitebench")
	check(err)
	defer os.RemoveAll(dir)

	drivers := []driver{
		{"modernc.org/sqlite (pure Go)", "sqlite",
			"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_txlock=immediate"},
		{"mattn/go-sqlite3 (cgo)", "sqlite3",
			"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate"},
	}
	fmt.Printf("%d CPUs; %d write transactions through one connection, %d list queries on %d readers\n\n",
		runtime.NumCPU(), *rows, *reads, *workers)
	fmt.Printf("%-30s %14s %14s\n", "driver", "writes/s", "reads/s")
	if *reverse {
		drivers[0], drivers[1] = drivers[1], drivers[0]
	}
	for _, d := range drivers {
		path := filepath.Join(dir, d.sqlName+".db")
		w, r := run(d, "file:"+path+d.dsn, *rows, *reads, *workers)
		fmt.Printf("%-30s %14.0f %14.0f\n", d.name, w, r)
	}
}

func run(d driver, dsn string, rows, reads, workers int) (float64, float64) {
	db, err := sql.Open(d.sqlName, dsn)
	check(err)
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, bio TEXT NOT NULL)`,
		`CREATE TABLE articles (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, slug TEXT NOT NULL,
			title TEXT NOT NULL, description TEXT NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE INDEX articles_author ON articles (author_id, id DESC)`,
	} {
		_, err := db.Exec(q)
		check(err)
	}
	for i := 1; i <= 100; i++ {
		_, err := db.Exec(`INSERT INTO users (id, username, bio) VALUES (?, ?, '')`, i, fmt.Sprint("user", i))
		check(err)
	}

	start := time.Now()
	for i := 0; i < rows; i++ {
		tx, err := db.Begin()
		check(err)
		_, err = tx.Exec(`INSERT INTO articles (author_id, slug, title, description, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, i%100+1, fmt.Sprint("slug-", i), "A title", "A description",
			"A body of some length that looks like a short article.", time.Now().UTC().Format(time.RFC3339Nano))
		check(err)
		check(tx.Commit())
	}
	writes := float64(rows) / time.Since(start).Seconds()

	db.SetMaxOpenConns(workers)
	var wg sync.WaitGroup
	start = time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < reads; i += workers {
				rs, err := db.Query(`SELECT a.id, a.slug, a.title, a.description, a.created_at, u.username, u.bio
					FROM articles a JOIN users u ON u.id = a.author_id
					WHERE a.author_id = ? ORDER BY a.id DESC LIMIT 20`, i%100+1)
				check(err)
				for rs.Next() {
					var id int64
					var slug, title, desc, created, name, bio string
					check(rs.Scan(&id, &slug, &title, &desc, &created, &name, &bio))
				}
				check(rs.Err())
				rs.Close()
			}
		}(w)
	}
	wg.Wait()
	return writes, float64(reads) / time.Since(start).Seconds()
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqlitebench:", err)
		os.Exit(1)
	}
}
