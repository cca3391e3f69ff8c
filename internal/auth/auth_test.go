package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func key(id string, b byte) Key { return Key{ID: id, Secret: bytes.Repeat([]byte{b}, 32)} }

func mustTokens(t *testing.T, ttl time.Duration, keys ...Key) *Tokens {
	t.Helper()
	tok, err := NewTokens(keys, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenRoundTrip(t *testing.T) {
	tok := mustTokens(t, time.Hour, key("k1", 1))
	for _, id := range []int64{1, 42, 1 << 40} {
		for _, gen := range []int64{0, 3} {
			s := tok.Issue(id, gen)
			got, err := tok.Verify(s)
			if err != nil || got.UserID != id || got.Gen != gen || got.ID == "" {
				t.Errorf("Verify(Issue(%d, %d)) = %+v, %v", id, gen, got, err)
			}
			if d := got.Expires.Sub(got.IssuedAt); d != time.Hour {
				t.Errorf("token lives %v, want 1h", d)
			}
		}
	}
	// Every token has its own id, even two of one user in one second.
	a, _ := tok.Verify(tok.Issue(1, 0))
	b, _ := tok.Verify(tok.Issue(1, 0))
	if a.ID == b.ID {
		t.Errorf("two tokens share the id %q", a.ID)
	}
	// The header names the key and the algorithm.
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.Issue(1, 0), ".")[0])
	var hdr map[string]string
	if err := json.Unmarshal(h, &hdr); err != nil || hdr["kid"] != "k1" || hdr["alg"] != "HS256" {
		t.Errorf("header = %s (%v)", h, err)
	}
}

func TestTokenRotation(t *testing.T) {
	old, cur := key("old", 1), key("new", 2)
	before := mustTokens(t, time.Hour, old)
	rotated := mustTokens(t, time.Hour, cur, old)
	retired := mustTokens(t, time.Hour, cur)

	oldToken := before.Issue(7, 0)
	if c, err := rotated.Verify(oldToken); err != nil || c.UserID != 7 {
		t.Errorf("token of the key listed second: %+v, %v", c, err)
	}
	newToken := rotated.Issue(8, 0)
	if !strings.Contains(decodeHeader(t, newToken), `"kid":"new"`) {
		t.Errorf("rotated set signs with %s, want the first key", decodeHeader(t, newToken))
	}
	if _, err := before.Verify(newToken); err == nil {
		t.Error("a server without the new key accepted its token")
	}
	if _, err := retired.Verify(oldToken); err == nil {
		t.Error("token of a retired key accepted")
	}
}

func decodeHeader(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func encode(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestTokenRejected(t *testing.T) {
	k := key("k1", 1)
	tok := mustTokens(t, time.Hour, k)
	good := tok.Issue(5, 0)
	parts := strings.Split(good, ".")
	signed := func(h, c string) string { // a correctly signed token of any content
		return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sign(k.Secret, h+"."+c))
	}
	now := time.Now().Unix()
	hdr := encode(header{Alg: "HS256", Typ: "JWT", Kid: "k1"})

	cases := map[string]string{
		"empty":              "",
		"one part":           "abc",
		"four parts":         good + ".x",
		"bad base64":         "!!." + parts[1] + "." + parts[2],
		"tampered payload":   parts[0] + "." + encode(claims{Sub: "6", Iat: now, Exp: now + 3600}) + "." + parts[2],
		"tampered signature": parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0}, 32)),
		"no signature":       parts[0] + "." + parts[1] + ".",
		"alg none":           encode(map[string]string{"alg": "none", "typ": "JWT", "kid": "k1"}) + "." + parts[1] + ".",
		"alg none signed":    signed(encode(map[string]string{"alg": "none", "kid": "k1"}), parts[1]),
		"alg HS512":          signed(encode(map[string]string{"alg": "HS512", "kid": "k1"}), parts[1]),
		"unknown kid":        mustTokens(t, time.Hour, Key{ID: "k2", Secret: k.Secret}).Issue(5, 0),
		"no kid":             signed(encode(map[string]string{"alg": "HS256"}), parts[1]),
		"other secret":       mustTokens(t, time.Hour, key("k1", 9)).Issue(5, 0),
		"expired":            signed(hdr, encode(claims{Sub: "5", Iat: now - 7200, Exp: now - 1})),
		"no expiry":          signed(hdr, encode(map[string]any{"sub": "5"})),
		"sub zero":           signed(hdr, encode(claims{Sub: "0", Exp: now + 60})),
		"sub negative":       signed(hdr, encode(claims{Sub: "-3", Exp: now + 60})),
		"sub not a number":   signed(hdr, encode(claims{Sub: "admin", Exp: now + 60})),
		"payload not JSON":   signed(hdr, base64.RawURLEncoding.EncodeToString([]byte("{"))),
		"huge":               signed(hdr, encode(map[string]any{"sub": "5", "exp": now + 60, "pad": strings.Repeat("x", 5000)})),
		"negative gen":       signed(hdr, encode(claims{Sub: "5", Exp: now + 60, Gen: -1})),
		"long jti":           signed(hdr, encode(claims{Sub: "5", Exp: now + 60, Jti: strings.Repeat("j", 65)})),
	}
	for name, s := range cases {
		if c, err := tok.Verify(s); err == nil {
			t.Errorf("%s: accepted as user %d", name, c.UserID)
		}
	}
	if _, err := tok.Verify(signed(hdr, encode(claims{Sub: "5", Exp: now + 60}))); err != nil {
		t.Errorf("control: a well-formed token was refused: %v", err)
	}
}

func TestTokenExpiry(t *testing.T) {
	tok := mustTokens(t, time.Hour, key("k1", 1))
	start := time.Now()
	tok.now = func() time.Time { return start }
	s := tok.Issue(1, 0)
	for _, c := range []struct {
		after time.Duration
		ok    bool
	}{{0, true}, {59 * time.Minute, true}, {time.Hour, false}, {48 * time.Hour, false}} {
		tok.now = func() time.Time { return start.Add(c.after) }
		if _, err := tok.Verify(s); (err == nil) != c.ok {
			t.Errorf("after %v: err = %v, want ok=%v", c.after, err, c.ok)
		}
	}
}

func TestNewTokensChecksKeys(t *testing.T) {
	bad := map[string][]Key{
		"none":         nil,
		"short secret": {{ID: "a", Secret: []byte("short")}},
		"no id":        {{Secret: bytes.Repeat([]byte{1}, 32)}},
		"duplicate id": {key("a", 1), key("a", 2)},
	}
	for name, keys := range bad {
		if _, err := NewTokens(keys, time.Hour); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseKeys(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))
	keys, err := ParseKeys(" new:" + secret + " , old:" + secret + ",")
	if err != nil || len(keys) != 2 || keys[0].ID != "new" || keys[1].ID != "old" || len(keys[0].Secret) != 32 {
		t.Fatalf("ParseKeys = %+v, %v", keys, err)
	}
	for _, s := range []string{"", " , ", "nocolon", "id:not base64!"} {
		if _, err := ParseKeys(s); err == nil {
			t.Errorf("ParseKeys(%q) accepted", s)
		}
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "jwt.keys")
	first, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || len(first[0].Secret) < 32 || first[0].ID == "" {
		t.Fatalf("created keys = %+v", first)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
	again, err := LoadOrCreateKeyFile(path)
	if err != nil || len(again) != 1 || again[0].ID != first[0].ID || !bytes.Equal(again[0].Secret, first[0].Secret) {
		t.Fatalf("reloaded keys = %+v, %v; want the same key", again, err)
	}
	// A token issued before a "restart" verifies after it.
	tok := mustTokens(t, time.Hour, first...)
	if _, err := mustTokens(t, time.Hour, again...).Verify(tok.Issue(3, 0)); err != nil {
		t.Errorf("token across restart: %v", err)
	}

	// Several processes starting at once agree on one key.
	path2 := filepath.Join(t.TempDir(), "jwt.keys")
	var wg sync.WaitGroup
	got := make([][]Key, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = LoadOrCreateKeyFile(path2)
		}()
	}
	wg.Wait()
	for i, k := range got {
		if len(k) != 1 || !bytes.Equal(k[0].Secret, got[0][0].Secret) {
			t.Errorf("starter %d got %+v", i, k)
		}
	}
	// The key file is written aside and linked into place, so it is never
	// seen half-written, and nothing is left behind.
	entries, _ := os.ReadDir(filepath.Dir(path2))
	if len(entries) != 1 || entries[0].Name() != "jwt.keys" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("data dir holds %v, want only jwt.keys", names)
	}
	if fi, err := os.Stat(path2); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("linked key file: %v %v", fi, err)
	}

	// A corrupt or empty key file is an error, not a silent new key that
	// would log everyone out.
	for _, content := range []string{"garbage", ""} {
		bad := filepath.Join(t.TempDir(), "jwt.keys")
		os.WriteFile(bad, []byte(content), 0o600)
		if _, err := LoadOrCreateKeyFile(bad); err == nil {
			t.Errorf("key file %q accepted", content)
		}
	}
}

func TestBcrypt(t *testing.T) {
	h := Bcrypt{Cost: 4}
	hash, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$2a$04$") || strings.Contains(hash, "correct horse") {
		t.Errorf("hash = %q", hash)
	}
	if !h.Check(hash, "correct horse") {
		t.Error("right password refused")
	}
	for _, wrong := range []string{"", "correct horsE", "correct horse "} {
		if h.Check(hash, wrong) {
			t.Errorf("wrong password %q accepted", wrong)
		}
	}
	if h.Check("not a hash", "correct horse") {
		t.Error("garbage hash accepted")
	}
	other, _ := h.Hash("correct horse")
	if other == hash {
		t.Error("two hashes of one password are equal: no salt")
	}
	if d, _ := (Bcrypt{}).Hash("x"); !strings.HasPrefix(d, "$2a$10$") {
		t.Errorf("default cost hash = %q", d)
	}
}

func TestUserIDContext(t *testing.T) {
	ctx := context.Background()
	if _, ok := ClaimsFrom(ctx); UserID(ctx) != 0 || ok {
		t.Error("anonymous context has a user")
	}
	if UserID(WithUserID(ctx, 9)) != 9 {
		t.Error("user id lost")
	}
	c := Claims{UserID: 4, Gen: 2, ID: "x"}
	if got, ok := ClaimsFrom(WithClaims(ctx, c)); !ok || got != c || UserID(WithClaims(ctx, c)) != 4 {
		t.Errorf("claims lost: %+v %v", got, ok)
	}
}

// Tokens issued before generations and token ids (no gen, no jti claim)
// keep working as generation 0, and still have an id of their own, so
// they can be revoked one by one.
func TestTokenFromBeforeRevocation(t *testing.T) {
	k := key("k1", 1)
	tok := mustTokens(t, time.Hour, k)
	now := time.Now().Unix()
	legacy := func(sub string) string {
		h := encode(header{Alg: "HS256", Typ: "JWT", Kid: "k1"})
		c := encode(map[string]any{"sub": sub, "iat": now, "exp": now + 60})
		return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sign(k.Secret, h+"."+c))
	}
	a, err := tok.Verify(legacy("5"))
	if err != nil || a.UserID != 5 || a.Gen != 0 || !strings.HasPrefix(a.ID, "sig:") {
		t.Fatalf("legacy token: %+v, %v", a, err)
	}
	again, _ := tok.Verify(legacy("5"))
	other, _ := tok.Verify(legacy("6"))
	if again.ID != a.ID || other.ID == a.ID {
		t.Errorf("ids %q, %q (same token), %q (another): want stable and distinct", a.ID, again.ID, other.ID)
	}
}

// A hash or check waits while every turn is taken, and runs once one is
// free; without turns nothing waits.
func TestBcryptTurns(t *testing.T) {
	h, err := Bcrypt{Cost: 4}.Hash("password1")
	if err != nil {
		t.Fatal(err)
	}
	turns := NewTurns(1)
	b := Bcrypt{Cost: 4, Turns: turns}
	turns <- struct{}{} // every turn taken
	done := make(chan bool, 2)
	go func() { _, err := b.Hash("password1"); done <- err == nil }()
	go func() { done <- b.Check(h, "password1") }()
	select {
	case <-done:
		t.Fatal("a hash ran while every turn was taken")
	case <-time.After(100 * time.Millisecond): // a cost-4 hash takes about a millisecond
	}
	<-turns
	for range 2 {
		if !<-done {
			t.Error("hash or check failed once it had its turn")
		}
	}
	if n := cap(NewTurns(0)); n < 1 {
		t.Errorf("NewTurns(0) lets %d run at once", n)
	}
}
