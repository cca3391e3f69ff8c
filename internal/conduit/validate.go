package conduit

import (
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits on user input. They keep rows small enough for any page to render
// quickly and stop one request from filling the disk.
const (
	MaxUsername    = 40 // bytes, which for a valid username are characters
	MaxEmail       = 254
	MinPassword    = 8
	MaxPassword    = 72 // bcrypt ignores bytes past 72, so longer ones are refused
	MaxBio         = 2000
	MaxImageURL    = 2048
	MaxTitle       = 200
	MaxDescription = 500
	MaxBody        = 100_000
	MaxTags        = 10
	MaxTag         = 40
	MaxComment     = 5000
	// MaxTagEntries bounds the tag list a client may send, duplicates and
	// blanks included: a longer list is refused before any tag is looked
	// at, so the work a request causes does not grow with what it sends.
	MaxTagEntries = 100
)

// IsText reports whether s is valid UTF-8 without NUL characters. Every
// string the service stores or looks up must be: PostgreSQL refuses the
// others as parameters (the request would fail with a 500), and SQLite
// would store them, to break a later copy to PostgreSQL.
func IsText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// notText is the message for a value that is not text (see IsText).
const notText = "must be valid UTF-8 without NUL characters"

// isUsername reports whether name is a username that may be chosen today:
// 1 to MaxUsername ASCII letters, digits, '_', '-' and '.', with at least
// one letter or digit. Every such name is its own URL path segment ("." and
// "..", which routers remove, are excluded), and ASCII has one case
// folding that Go, SQLite and PostgreSQL (in any locale) agree on.
func isUsername(name string) bool {
	return name != "" && len(name) <= MaxUsername && usernameBytes(name) && strings.IndexFunc(name, isAlnum) >= 0
}

// usernameBytes reports whether name holds only the bytes a username may.
func usernameBytes(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := rune(name[i]); !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// isAlnum reports whether r is an ASCII letter or digit.
func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}

// UsernameKey is the one definition of "the same username": two names are
// the same user's when their keys are equal, byte for byte. The database's
// unique index (users.username_key), every lookup by name and every cache
// key use it, so they cannot disagree, on SQLite or PostgreSQL.
//
// A valid username's key is its ASCII lower case. Any other string is its
// own key: such names were accepted before the rule existed (migration
// 0006 keeps them so), and they stay reachable by their exact spelling
// only; no valid name can share a key with one, since a valid name's key
// is itself a valid name.
func UsernameKey(name string) string {
	if !isUsername(name) {
		return name
	}
	return strings.ToLower(name) // ASCII only here: plain ASCII folding
}

func checkUsername(v ValidationError, username string) {
	switch {
	case username == "":
		v.Add("username", "can't be blank")
	case !usernameBytes(username):
		v.Add("username", "may only contain ASCII letters, digits, '_', '-' and '.'")
	case len(username) > MaxUsername:
		v.Add("username", "is too long (maximum is %d characters)", MaxUsername)
	case !isUsername(username):
		v.Add("username", "must contain a letter or a digit")
	}
}

// canonicalEmail is the one form in which an email address is stored and
// looked up: without surrounding white space, in Unicode normalization form
// C, lower-cased (Go's simple case mapping). Addresses are the same when
// their canonical forms are equal byte for byte; the database compares
// bytes and never folds case itself, so SQLite and PostgreSQL agree.
func canonicalEmail(email string) string {
	return norm.NFC.String(strings.ToLower(norm.NFC.String(strings.TrimSpace(email))))
}

// checkEmail checks an address as typed and returns its canonical form.
func checkEmail(v ValidationError, email string) string {
	if !IsText(email) {
		v.Add("email", notText)
		return email
	}
	email = canonicalEmail(email)
	switch {
	case email == "":
		v.Add("email", "can't be blank")
	case len(email) > MaxEmail:
		v.Add("email", "is too long (maximum is %d characters)", MaxEmail)
	default:
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Address != email {
			v.Add("email", "is invalid")
		}
	}
	return email
}

func checkPassword(v ValidationError, password string) {
	switch {
	case password == "":
		v.Add("password", "can't be blank")
	case !IsText(password):
		v.Add("password", notText)
	case utf8.RuneCountInString(password) < MinPassword:
		v.Add("password", "is too short (minimum is %d characters)", MinPassword)
	case len(password) > MaxPassword:
		v.Add("password", "is too long (maximum is %d bytes)", MaxPassword)
	}
}

func checkImage(v ValidationError, image string) {
	if image == "" {
		return
	}
	if len(image) > MaxImageURL {
		v.Add("image", "is too long (maximum is %d characters)", MaxImageURL)
		return
	}
	if !IsText(image) {
		v.Add("image", notText)
		return
	}
	u, err := url.Parse(image)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Add("image", "must be an http or https URL")
	}
}

func checkBio(v ValidationError, bio string) {
	switch {
	case !IsText(bio):
		v.Add("bio", notText)
	case utf8.RuneCountInString(bio) > MaxBio:
		v.Add("bio", "is too long (maximum is %d characters)", MaxBio)
	}
}

func checkText(v ValidationError, field, value string, max int) {
	switch {
	case strings.TrimSpace(value) == "":
		v.Add(field, "can't be blank")
	case !IsText(value):
		v.Add(field, notText)
	case utf8.RuneCountInString(value) > max:
		v.Add(field, "is too long (maximum is %d characters)", max)
	}
}

// normalizeTags trims, de-duplicates and sorts tags, dropping empty ones.
// Its work is bounded by MaxTagEntries, not by the length of tags, and it
// reports each kind of problem once, so a hostile list costs neither CPU
// nor a long error response.
func normalizeTags(v ValidationError, tags []string) []string {
	if len(tags) > MaxTagEntries {
		v.Add("tagList", "has too many tags (maximum is %d)", MaxTags)
		return nil
	}
	out := make([]string, 0, min(len(tags), MaxTags+1))
	seen := make(map[string]bool, len(tags))
	var notTextSeen, tooLong bool
	for _, t := range tags {
		t = strings.TrimSpace(t)
		switch {
		case t == "" || seen[t]:
		case !IsText(t):
			notTextSeen = true
		case utf8.RuneCountInString(t) > MaxTag:
			tooLong = true
		default:
			seen[t] = true
			out = append(out, t)
		}
	}
	if notTextSeen {
		v.Add("tagList", notText)
	}
	if tooLong {
		v.Add("tagList", "has a tag that is too long (maximum is %d characters)", MaxTag)
	}
	if len(out) > MaxTags {
		v.Add("tagList", "has too many tags (maximum is %d)", MaxTags)
	}
	slices.Sort(out)
	return out
}

// ParseTags splits a tag field typed by a person: tags separated by commas
// or white space. It stops after MaxTagEntries+1 tags, which is enough for
// normalizeTags to refuse the list, so a huge field costs no more than a
// normal one.
func ParseTags(s string) []string {
	var out []string
	for t := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		out = append(out, t)
		if len(out) > MaxTagEntries {
			break
		}
	}
	return out
}
