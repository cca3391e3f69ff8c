package conduit

import (
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on user input. They keep rows small enough for any page to render
// quickly and stop one request from filling the disk.
const (
	MaxUsername    = 40
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
)

func checkUsername(v ValidationError, username string) {
	switch {
	case username == "":
		v.Add("username", "can't be blank")
	case utf8.RuneCountInString(username) > MaxUsername:
		v.Add("username", "is too long (maximum is %d characters)", MaxUsername)
	case strings.IndexFunc(username, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '-' || r == '.')
	}) >= 0:
		v.Add("username", "may only contain letters, digits, '_', '-' and '.'")
	}
}

func checkEmail(v ValidationError, email string) {
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
}

func checkPassword(v ValidationError, password string) {
	switch {
	case password == "":
		v.Add("password", "can't be blank")
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
	u, err := url.Parse(image)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.Add("image", "must be an http or https URL")
	}
}

func checkText(v ValidationError, field, value string, max int) {
	switch {
	case strings.TrimSpace(value) == "":
		v.Add(field, "can't be blank")
	case utf8.RuneCountInString(value) > max:
		v.Add(field, "is too long (maximum is %d characters)", max)
	case strings.ContainsRune(value, 0):
		v.Add(field, noNUL)
	}
}

// noNUL refuses NUL characters: PostgreSQL cannot store them in text, and
// no person types them.
const noNUL = "must not contain NUL characters"

// normalizeTags trims, de-duplicates and sorts tags, dropping empty ones.
func normalizeTags(v ValidationError, tags []string) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if utf8.RuneCountInString(t) > MaxTag {
			v.Add("tagList", "tag %q is too long (maximum is %d characters)", t, MaxTag)
			continue
		}
		if strings.ContainsRune(t, 0) {
			v.Add("tagList", noNUL)
			continue
		}
		out = append(out, t)
	}
	if len(out) > MaxTags {
		v.Add("tagList", "has too many tags (maximum is %d)", MaxTags)
	}
	slices.Sort(out)
	return out
}

// ParseTags splits a tag field typed by a person: tags separated by commas
// or white space.
func ParseTags(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
