package conduit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// recordingHasher remembers which hashes it made and which it was asked
// to check against.
type recordingHasher struct {
	made    map[string]bool
	checked []string
}

func (h *recordingHasher) Hash(p string) (string, error) {
	hash := "hash:" + p
	h.made[hash] = true
	return hash, nil
}

func (h *recordingHasher) Check(hash, p string) bool {
	h.checked = append(h.checked, hash)
	return hash == "hash:"+p
}

// A login with an unknown email still runs one password check, against a
// hash made by the same hasher (so at the same cost), so that response
// time does not tell which emails have accounts.
func TestLoginUnknownEmailChecksHashOfSameHasher(t *testing.T) {
	h := &recordingHasher{made: map[string]bool{}}
	svc := conduit.NewService(storetest.OpenSQLite(t), cache.NewMemory(10), h)
	_, err := svc.Login(context.Background(), conduit.SignIn{Email: "nobody@example.com", Password: "password"})
	if !errors.Is(err, conduit.ErrInvalidCredentials) {
		t.Fatalf("Login: got %v, want ErrInvalidCredentials", err)
	}
	if len(h.checked) != 1 || !h.made[h.checked[0]] {
		t.Fatalf("checked %q; want one check against a hash this hasher made (made: %v)", h.checked, h.made)
	}
}
