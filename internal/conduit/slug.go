package conduit

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode"
)

// Slugify turns a title into the readable part of an article's URL:
// lower-case letters and digits separated by single dashes.
func Slugify(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			if b.Len() >= 80 {
				break
			}
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "article"
	}
	return b.String()
}

// slugWithSuffix makes a slug unique with a short random suffix, used when
// the plain slug is already taken.
func slugWithSuffix(base string) string {
	var buf [4]byte
	_, _ = rand.Read(buf[:])
	return base + "-" + hex.EncodeToString(buf[:])
}
