package conduit

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Seeds beyond those in testdata/fuzz: the names of the case-folding
// attack and the names no URL reaches.
var usernameSeeds = []string{
	"admin", "adm\u0130n", "\u212Aelvin", "kelvin", "Élise", "élise", "e\u0301lise",
	".", "..", "...", "a.b", "_", "-", "Jake", "JAKE", "ci1732000000000000000", "a/b", "a%2Fb", "a\x00", "\xff",
}

// FuzzUsernameKey checks the one definition of "the same username": keys
// are stable (a key is its own key), two valid names share a key exactly
// when they differ in ASCII case only, a name outside the rule never
// shares a valid name's key, the cache key follows the key, and every
// valid name is reached by the routes built from it, unchanged.
func FuzzUsernameKey(f *testing.F) {
	for i, s := range usernameSeeds {
		f.Add(s, usernameSeeds[(i+1)%len(usernameSeeds)])
	}
	routes := http.NewServeMux()
	var got string
	for _, pattern := range []string{"GET /api/profiles/{username}", "GET /profile/{username}"} {
		routes.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) { got = r.PathValue("username") })
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := UsernameKey(a), UsernameKey(b)
		if UsernameKey(ka) != ka {
			t.Fatalf("key of %q is %q, whose key is %q", a, ka, UsernameKey(ka))
		}
		if (keyUsername(a) == keyUsername(b)) != (ka == kb) {
			t.Fatalf("cache keys and keys of %q, %q disagree", a, b)
		}
		validA, validB := accepted(a), accepted(b)
		if validA != isUsername(a) {
			t.Fatalf("%q: checkUsername says %v, isUsername %v", a, validA, isUsername(a))
		}
		switch {
		case validA && validB:
			if (ka == kb) != strings.EqualFold(a, b) {
				t.Fatalf("%q and %q: keys %q, %q", a, b, ka, kb)
			}
		case validA != validB:
			if ka == kb {
				t.Fatalf("valid and invalid names share key %q: %q, %q", ka, a, b)
			}
		}
		if !validA {
			if ka != a {
				t.Fatalf("name outside the rule %q has key %q, not itself", a, ka)
			}
			return
		}
		if !accepted(ka) || ka != strings.ToLower(a) {
			t.Fatalf("key %q of %q is not its valid lower case", ka, a)
		}
		for _, prefix := range []string{"/api/profiles/", "/profile/"} {
			got = "\x00unset"
			rec := httptest.NewRecorder()
			routes.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, prefix+url.PathEscape(a), nil))
			if rec.Code != http.StatusOK || got != a {
				t.Fatalf("%s%s: status %d, username %q, want %q", prefix, url.PathEscape(a), rec.Code, got, a)
			}
		}
	})
}

func accepted(name string) bool {
	v := ValidationError{}
	checkUsername(v, name)
	return len(v) == 0
}

// FuzzCanonicalEmail checks that the canonical form of an address is
// stable, text and NFC, and that an address accepted once is accepted,
// unchanged, as its own canonical form.
func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range []string{"jake@example.com", " Jake@Example.COM ", "\u00c9mile@example.com", "E\u0301mile@example.com",
		"\u212Aate@example.com", "adm\u0130n@example.com", "a\xff@example.com", "a\x00@b.c", "ǅ@x.y", "ﬃ@x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ValidationError{}
		c := checkEmail(v, s)
		if !IsText(s) {
			if len(v["email"]) == 0 {
				t.Fatalf("%q accepted", s)
			}
			return
		}
		if canonicalEmail(c) != c || !IsText(c) || !norm.NFC.IsNormalString(c) {
			t.Fatalf("canonical form of %q: %q (again: %q)", s, c, canonicalEmail(c))
		}
		if len(v) == 0 {
			v2 := ValidationError{}
			if again := checkEmail(v2, c); again != c || len(v2) != 0 {
				t.Fatalf("%q accepted as %q, which gives %q, %v", s, c, again, v2)
			}
		}
	})
}

// FuzzTags checks that a tag field or list, however long, gives a bounded
// result: at most MaxTagEntries+1 parsed tags, at most one message per
// kind of problem, and when accepted, at most MaxTags sorted, distinct,
// trimmed tags of text that normalize to themselves.
func FuzzTags(f *testing.F) {
	for _, s := range []string{"go, sql  web", "a,a,a,a", " , ,, ", "x\xffy z", "a\x00", strings.Repeat("t,", 200),
		strings.Repeat("x", MaxTag+1), "a b c d e f g h i j k", "\u00a0go\u3000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n := len(ParseTags(s)); n > MaxTagEntries+1 {
			t.Fatalf("ParseTags gave %d tags", n)
		}
		for _, tags := range [][]string{ParseTags(s), strings.Split(s, ",")} {
			v := ValidationError{}
			out := normalizeTags(v, tags)
			if len(v["tagList"]) > 3 || len(v) > 1 {
				t.Fatalf("messages %v", v)
			}
			if len(v) > 0 {
				continue
			}
			if len(out) > MaxTags || !slices.IsSorted(out) || len(slices.Compact(slices.Clone(out))) != len(out) {
				t.Fatalf("tags %q", out)
			}
			for _, tag := range out {
				if tag == "" || tag != strings.TrimSpace(tag) || !IsText(tag) || utf8.RuneCountInString(tag) > MaxTag {
					t.Fatalf("tag %q", tag)
				}
			}
			v2 := ValidationError{}
			if again := normalizeTags(v2, out); !slices.Equal(again, out) || len(v2) != 0 {
				t.Fatalf("%q normalizes to %q, %v", out, again, v2)
			}
		}
	})
}
