package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/conduit-dev/conduit/internal/conduit"
)

func TestPostgresErrorMapping(t *testing.T) {
	db := &DB{d: dialect{name: "postgres", uniqueField: postgresUniqueField, unavailable: postgresUnavailable}}
	pg := func(code, constraint string) error {
		return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code, ConstraintName: constraint})
	}
	for _, tc := range []struct {
		err         error
		dup         string
		unavailable bool
	}{
		{pg("23505", "users_username_key"), "username", false},
		{pg("23505", "users_email_key"), "email", false},
		{pg("23505", "articles_slug_key"), "slug", false},
		{pg("23505", "article_tags_pkey"), "unique", false},
		{pg("23503", "articles_author_id_fkey"), "", false}, // FK violation: a bug or a race, not an outage
		{pg("42P01", ""), "", false},                        // undefined table
		{pg("57014", ""), "", true},                         // statement timeout
		{pg("57P01", ""), "", true},                         // admin shutdown
		{pg("08006", ""), "", true},                         // connection failure
		{pg("53300", ""), "", true},                         // too many connections
		{pg("40001", ""), "", true},                         // serialization failure
		{&pgconn.ConnectError{}, "", true},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, "", true},
		{io.ErrUnexpectedEOF, "", true},
		{context.DeadlineExceeded, "", true},
		{errors.New("some bug"), "", false},
	} {
		got := db.mapErr(tc.err)
		var dup *conduit.DuplicateError
		if errors.As(got, &dup) != (tc.dup != "") || (dup != nil && dup.Field != tc.dup) {
			t.Errorf("%v: mapped to %v, want duplicate %q", tc.err, got, tc.dup)
		}
		if errors.Is(got, conduit.ErrUnavailable) != tc.unavailable {
			t.Errorf("%v: mapped to %v, unavailable should be %v", tc.err, got, tc.unavailable)
		}
		if !tc.unavailable && tc.dup == "" && got != tc.err {
			t.Errorf("%v: changed to %v", tc.err, got)
		}
	}
}
