package store

// database/sql over the pgx pool (what the store uses, sharing all SQL with
// SQLite) against native pgx on the same pool, for the hot read of an
// article page: go test -run XXX -bench PostgresDriver ./internal/store/
// with CONDUIT_TEST_POSTGRES_URL set. Results are in docs/upgrade.md.

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/conduit"
)

func BenchmarkPostgresDriver(b *testing.B) {
	admin := os.Getenv("CONDUIT_TEST_POSTGRES_URL")
	if admin == "" {
		b.Skip("CONDUIT_TEST_POSTGRES_URL is not set")
	}
	ctx := context.Background()
	name := fmt.Sprintf("conduit_bench_%d", time.Now().UnixNano())
	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		b.Fatal(err)
	}
	defer ac.Close(ctx)
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatal(err)
	}
	defer ac.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
	cfg, _ := pgx.ParseConfig(admin)
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)

	db, err := OpenPostgres(ctx, url, PostgresOptions{MaxConns: 8})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	ts := time.Now().UTC()
	u := conduit.User{Username: "bench", Email: "bench@example.com", PasswordHash: "x", CreatedAt: ts, UpdatedAt: ts}
	if err := db.CreateUser(ctx, &u); err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		a := conduit.Article{Slug: fmt.Sprintf("a%d", i), Title: "t", Description: "d", Body: "b", Tags: []string{"x", "y"},
			CreatedAt: ts, UpdatedAt: ts, Author: conduit.Profile{ID: u.ID}}
		if err := db.CreateArticle(ctx, &a); err != nil {
			b.Fatal(err)
		}
	}
	q := dollarRebind(fmt.Sprintf(pageSelect, `SELECT id FROM articles ORDER BY id DESC LIMIT ? OFFSET ?`))

	b.Run("database-sql/list", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.ListArticles(ctx, u.ID, conduit.ArticleFilter{Limit: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("pgx-native/list", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var n int
				if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM articles a`).Scan(&n); err != nil {
					b.Fatal(err)
				}
				rows, err := db.pool.Query(ctx, q, u.ID, u.ID, 20, 0)
				if err != nil {
					b.Fatal(err)
				}
				var list []conduit.Article
				for rows.Next() {
					a, err := scanArticle(rows)
					if err != nil {
						b.Fatal(err)
					}
					list = append(list, a)
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				ids := make([]int64, len(list))
				for i := range list {
					ids[i] = list[i].ID
				}
				trows, err := db.pool.Query(ctx, `SELECT article_id, tag FROM article_tags WHERE article_id = ANY($1) ORDER BY article_id, tag`, ids)
				if err != nil {
					b.Fatal(err)
				}
				for trows.Next() {
					var id int64
					var tag string
					if err := trows.Scan(&id, &tag); err != nil {
						b.Fatal(err)
					}
				}
				if trows.Err() != nil {
					b.Fatal(trows.Err())
				}
			}
		})
	})
	b.Run("database-sql/by-slug", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := db.UserByUsername(ctx, "bench"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("pgx-native/by-slug", func(b *testing.B) {
		b.ReportAllocs()
		q := `SELECT ` + userColumns + ` FROM users WHERE username_key = $1`
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := scanUser(db.pool.QueryRow(ctx, q, "bench")); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
