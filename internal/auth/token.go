package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidToken is returned for any token that is malformed, signed with
// an unknown key, tampered with or expired. Callers need no finer reason.
var ErrInvalidToken = errors.New("invalid token")

// Key is one HMAC-SHA256 signing key with its id.
type Key struct {
	ID     string
	Secret []byte
}

// Tokens issues and verifies JWTs (HS256). The first key signs; every key
// verifies, so a key can be rotated in by putting it first and rotated out
// once the tokens it signed have expired.
type Tokens struct {
	keys []Key
	ttl  time.Duration
	now  func() time.Time
}

// NewTokens returns a Tokens with the given keys and token lifetime.
func NewTokens(keys []Key, ttl time.Duration) (*Tokens, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: at least one signing key is needed")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if k.ID == "" || len(k.Secret) < 32 {
			return nil, fmt.Errorf("auth: key %q needs an id and a secret of at least 32 bytes", k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("auth: key id %q is used twice", k.ID)
		}
		seen[k.ID] = true
	}
	return &Tokens{keys: keys, ttl: ttl, now: time.Now}, nil
}

// TTL is how long an issued token stays valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// claims is the token payload. Gen and Jti were added with revocation:
// tokens issued before carry neither and count as generation 0.
type claims struct {
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Gen int64  `json:"gen,omitempty"`
	Jti string `json:"jti,omitempty"`
}

// Claims is what a verified token says. conduit.Token has the same fields
// in the same order, so that the handlers convert one into the other; a
// field added here must be added there.
type Claims struct {
	UserID int64
	// Gen is the user's token generation when the token was issued. The
	// service refuses tokens of an older generation: bumping it (password
	// change, "sign out everywhere") revokes every earlier token at once.
	Gen int64
	// ID names this one token, so that it can be revoked alone (signing
	// out of one browser). It is the jti claim, or for tokens issued
	// before tokens had one, a prefix of the signature.
	ID       string
	IssuedAt time.Time
	Expires  time.Time
}

var b64 = base64.RawURLEncoding

// Issue returns a signed token for the user id at token generation gen.
func (t *Tokens) Issue(userID, gen int64) string {
	k := t.keys[0]
	now := t.now()
	h, _ := json.Marshal(header{Alg: "HS256", Typ: "JWT", Kid: k.ID})
	c, _ := json.Marshal(claims{
		Sub: strconv.FormatInt(userID, 10), Iat: now.Unix(), Exp: now.Add(t.ttl).Unix(),
		Gen: gen, Jti: newTokenID(),
	})
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	return signing + "." + b64.EncodeToString(sign(k.Secret, signing))
}

// newTokenID returns a random id (96 bits) for the jti claim.
func newTokenID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return b64.EncodeToString(b)
}

// Verify checks a token and returns what it says.
func (t *Tokens) Verify(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > 4096 {
		return Claims{}, ErrInvalidToken
	}
	var h header
	if err := decodePart(parts[0], &h); err != nil || h.Alg != "HS256" {
		return Claims{}, ErrInvalidToken
	}
	var secret []byte
	for _, k := range t.keys {
		if k.ID == h.Kid {
			secret = k.Secret
			break
		}
	}
	sig, err := b64.DecodeString(parts[2])
	if secret == nil || err != nil || !hmac.Equal(sig, sign(secret, parts[0]+"."+parts[1])) {
		return Claims{}, ErrInvalidToken
	}
	var c claims
	if err := decodePart(parts[1], &c); err != nil || t.now().Unix() >= c.Exp {
		return Claims{}, ErrInvalidToken
	}
	id, err := strconv.ParseInt(c.Sub, 10, 64)
	if err != nil || id <= 0 || c.Gen < 0 || len(c.Jti) > 64 {
		return Claims{}, ErrInvalidToken
	}
	tokenID := c.Jti
	if tokenID == "" {
		// The MAC is unique to the token and cannot be forged.
		tokenID = "sig:" + b64.EncodeToString(sig[:16])
	}
	return Claims{
		UserID: id, Gen: c.Gen, ID: tokenID,
		IssuedAt: time.Unix(c.Iat, 0), Expires: time.Unix(c.Exp, 0),
	}, nil
}

func decodePart(s string, v any) error {
	b, err := b64.DecodeString(s)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func sign(secret []byte, s string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// ParseKeys reads keys written as "id:base64secret" separated by commas,
// the form of the --jwt-keys flag.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		id, enc, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("key %q: want id:base64secret", id)
		}
		secret, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("key %q: secret is not base64: %w", id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys given")
	}
	return keys, nil
}

// LoadOrCreateKeyFile reads the keys in path (same form as ParseKeys), or
// creates the file with one new random key when it does not exist, so that
// a restarted single server keeps accepting the tokens it issued.
func LoadOrCreateKeyFile(path string) ([]Key, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseKeys(string(b))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	line := fmt.Sprintf("%x:%s\n", id, base64.StdEncoding.EncodeToString(secret))
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Write the key to a temp file, sync it, then link it into place. The
	// key file thus appears whole or not at all, even if the process dies
	// half-way; and Link, like O_EXCL, fails if another process starting at
	// the same moment was first, in which case we read its key.
	tmp, err := os.CreateTemp(dir, ".jwt-keys-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(line); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return LoadOrCreateKeyFile(path)
	} else if err != nil {
		return nil, err
	}
	if d, err := os.Open(dir); err == nil { // make the new name durable
		_ = d.Sync()
		d.Close()
	}
	return ParseKeys(line)
}
