// Package mediatest holds the contract every media.Store must meet, run by
// the tests of each implementation (the directory here, S3 against a real
// S3 server in internal/media/s3test).
package mediatest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/conduit-dev/conduit/internal/media"
)

// Contract checks s: what is put can be got back byte for byte with its
// type, putting the same name again is harmless, and a missing name is
// media.ErrNotFound.
func Contract(t *testing.T, s media.Store) {
	t.Helper()
	ctx := t.Context()
	name := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.png"
	data := []byte("\x89PNG\r\n\x1a\n not really a picture, but bytes")
	if err := s.Put(ctx, name, "image/png", data); err != nil {
		t.Fatalf("put: %v", err)
	}
	if err := s.Put(ctx, name, "image/png", data); err != nil {
		t.Fatalf("put again: %v", err)
	}
	got, ct, err := s.Get(ctx, name)
	if err != nil || !bytes.Equal(got, data) || ct != "image/png" {
		t.Fatalf("get = %q %q %v", got, ct, err)
	}
	jpg := "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210.jpg"
	if err := s.Put(ctx, jpg, "image/jpeg", []byte{0xff, 0xd8, 0xff}); err != nil {
		t.Fatal(err)
	}
	if _, ct, err := s.Get(ctx, jpg); err != nil || ct != "image/jpeg" {
		t.Fatalf("get jpg: %q %v", ct, err)
	}
	if _, _, err := s.Get(ctx, "1111111111111111111111111111111111111111111111111111111111111111.png"); !errors.Is(err, media.ErrNotFound) {
		t.Fatalf("get missing: err = %v, want ErrNotFound", err)
	}
}
