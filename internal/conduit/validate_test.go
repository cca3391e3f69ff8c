package conduit

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestSlugify(t *testing.T) {
	cases := []struct{ title, want string }{
		{"How to Train Your Dragon", "how-to-train-your-dragon"},
		{"  Hello,   World!  ", "hello-world"},
		{"C++ & Go: 2 languages", "c-go-2-languages"},
		{"Ünïcödé Straße", "ünïcödé-straße"},
		{"日本語 タイトル", "日本語-タイトル"},
		{"---", "article"},
		{"", "article"},
		{"<script>alert(1)</script>", "script-alert-1-script"},
		{"a/b?c#d", "a-b-c-d"},
	}
	for _, c := range cases {
		if got := Slugify(c.title); got != c.want {
			t.Errorf("Slugify(%q) = %q, want %q", c.title, got, c.want)
		}
	}
	long := Slugify(strings.Repeat("word ", 100))
	if len(long) > 85 || strings.HasSuffix(long, "-") || strings.HasPrefix(long, "-") {
		t.Errorf("long slug = %q (%d bytes)", long, len(long))
	}
	if s := slugWithSuffix("base"); !strings.HasPrefix(s, "base-") || len(s) != len("base-")+8 || s == slugWithSuffix("base") {
		t.Errorf("slugWithSuffix = %q", s)
	}
}

func TestParseTags(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"go", []string{"go"}},
		{"go, sql", []string{"go", "sql"}},
		{"go,sql  web\tdev\n", []string{"go", "sql", "web", "dev"}},
		{" , ,, ", nil},
	}
	for _, c := range cases {
		if got := ParseTags(c.in); !slices.Equal(got, c.want) {
			t.Errorf("ParseTags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizeTags(t *testing.T) {
	v := ValidationError{}
	if got := normalizeTags(v, []string{"b", " a ", "b", "", "  "}); !slices.Equal(got, []string{"a", "b"}) || len(v) != 0 {
		t.Errorf("normalizeTags = %q, errors %v", got, v)
	}
	v = ValidationError{}
	normalizeTags(v, strings.Split("a b c d e f g h i j k", " "))
	if len(v["tagList"]) == 0 {
		t.Error("11 tags accepted")
	}
	v = ValidationError{}
	normalizeTags(v, []string{strings.Repeat("x", MaxTag+1)})
	if len(v["tagList"]) == 0 {
		t.Error("over-long tag accepted")
	}
	// Duplicates and blanks do not count towards the limit of distinct
	// tags, up to the limit of entries.
	v = ValidationError{}
	many := append(slices.Repeat([]string{"go", " go ", ""}, (MaxTagEntries-1)/3), "sql")
	if got := normalizeTags(v, many); !slices.Equal(got, []string{"go", "sql"}) || len(v) != 0 {
		t.Errorf("%d entries of 2 tags: %q, errors %v", len(many), got, v)
	}
}

// A hostile tag list costs work bounded by MaxTagEntries, not by its
// length: 110,000 distinct tags (the old code kept them all, comparing
// each new one with every one before: seconds of CPU) or as many bad ones
// (one error message each: an answer as long as the request) are refused
// at once. Work is counted, not timed: what the function keeps and
// reports is bounded. BenchmarkNormalizeTags measures the time.
func TestNormalizeTagsBoundedWork(t *testing.T) {
	const n = 110_000
	for name, tags := range map[string][]string{
		"distinct": func() []string {
			s := make([]string, n)
			for i := range s {
				s[i] = fmt.Sprintf("tag%d", i)
			}
			return s
		}(),
		"too long": slices.Repeat([]string{strings.Repeat("x", MaxTag+1)}, n),
		"not text": slices.Repeat([]string{"a\xff"}, n),
	} {
		v := ValidationError{}
		out := normalizeTags(v, tags)
		msgs := v["tagList"]
		if len(out) > MaxTags || len(msgs) != 1 || len(v) != 1 {
			t.Errorf("%s: %d tags kept, messages %q", name, len(out), msgs)
		}
	}
	// Within the entry limit, each problem is reported once.
	v := ValidationError{}
	normalizeTags(v, slices.Repeat([]string{strings.Repeat("x", MaxTag+1), "a\xff", "ok"}, MaxTagEntries/3))
	if len(v["tagList"]) != 2 {
		t.Errorf("messages for repeated problems: %q", v["tagList"])
	}
	// A tag field typed into a form is split no further than needed.
	if got := len(ParseTags(strings.Repeat("a,", n))); got != MaxTagEntries+1 {
		t.Errorf("ParseTags of %d tags returned %d", n, got)
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		name  string
		check func(ValidationError)
		ok    bool
	}{
		{"username ok", func(v ValidationError) { checkUsername(v, "jake_the-dog.2") }, true},
		{"username unicode", func(v ValidationError) { checkUsername(v, "Jürgen") }, false},
		{"username dot", func(v ValidationError) { checkUsername(v, ".") }, false},
		{"username dot dot", func(v ValidationError) { checkUsername(v, "..") }, false},
		{"username dots and dashes", func(v ValidationError) { checkUsername(v, "-._") }, false},
		{"username blank", func(v ValidationError) { checkUsername(v, "") }, false},
		{"username space", func(v ValidationError) { checkUsername(v, "a b") }, false},
		{"username slash", func(v ValidationError) { checkUsername(v, "a/b") }, false},
		{"username too long", func(v ValidationError) { checkUsername(v, strings.Repeat("a", MaxUsername+1)) }, false},
		{"username at limit", func(v ValidationError) { checkUsername(v, strings.Repeat("a", MaxUsername)) }, true},
		{"email ok", func(v ValidationError) { checkEmail(v, "jake@example.com") }, true},
		{"email with name", func(v ValidationError) { checkEmail(v, "Jake <jake@example.com>") }, false},
		{"email no at", func(v ValidationError) { checkEmail(v, "jake.example.com") }, false},
		{"email blank", func(v ValidationError) { checkEmail(v, "") }, false},
		{"email too long", func(v ValidationError) { checkEmail(v, strings.Repeat("a", 250)+"@b.co") }, false},
		{"password ok", func(v ValidationError) { checkPassword(v, "12345678") }, true},
		{"password short", func(v ValidationError) { checkPassword(v, "1234567") }, false},
		{"password 72 bytes", func(v ValidationError) { checkPassword(v, strings.Repeat("p", 72)) }, true},
		{"password 73 bytes", func(v ValidationError) { checkPassword(v, strings.Repeat("p", 73)) }, false},
		{"image empty", func(v ValidationError) { checkImage(v, "") }, true},
		{"image https", func(v ValidationError) { checkImage(v, "https://img.example/a.png") }, true},
		{"image javascript", func(v ValidationError) { checkImage(v, "javascript:alert(1)") }, false},
		{"image data", func(v ValidationError) { checkImage(v, "data:image/png;base64,AAAA") }, false},
		{"image relative", func(v ValidationError) { checkImage(v, "/a.png") }, false},
		{"text blank", func(v ValidationError) { checkText(v, "body", " \n\t", 10) }, false},
		{"text at limit", func(v ValidationError) { checkText(v, "body", strings.Repeat("é", 10), 10) }, true},
		{"text over limit", func(v ValidationError) { checkText(v, "body", strings.Repeat("é", 11), 10) }, false},
		{"text with NUL", func(v ValidationError) { checkText(v, "body", "a\x00b", 10) }, false},
		{"tag with NUL", func(v ValidationError) { normalizeTags(v, []string{"a\x00"}) }, false},
		{"email with NUL", func(v ValidationError) { checkEmail(v, "a\x00@example.com") }, false},
		{"email not UTF-8", func(v ValidationError) { checkEmail(v, "a\xff@example.com") }, false},
		{"text not UTF-8", func(v ValidationError) { checkText(v, "body", "a\xc0\xaf", 10) }, false},
		{"text surrogate", func(v ValidationError) { checkText(v, "body", "a\xed\xa0\x80", 10) }, false},
		{"tag not UTF-8", func(v ValidationError) { normalizeTags(v, []string{"a\xff"}) }, false},
		{"bio not UTF-8", func(v ValidationError) { checkBio(v, "\xff") }, false},
		{"bio with NUL", func(v ValidationError) { checkBio(v, "a\x00") }, false},
		{"bio at limit", func(v ValidationError) { checkBio(v, strings.Repeat("é", MaxBio)) }, true},
		{"bio over limit", func(v ValidationError) { checkBio(v, strings.Repeat("é", MaxBio+1)) }, false},
		{"password not UTF-8", func(v ValidationError) { checkPassword(v, "12345678\xff") }, false},
		{"image not UTF-8", func(v ValidationError) { checkImage(v, "https://a.example/\xff") }, false},
		{"image with NUL", func(v ValidationError) { checkImage(v, "https://a.example/\x00") }, false},
	}
	for _, c := range cases {
		v := ValidationError{}
		c.check(v)
		if (v.Err() == nil) != c.ok {
			t.Errorf("%s: errors %v, want ok=%v", c.name, v, c.ok)
		}
	}
}

func TestValidationError(t *testing.T) {
	v := ValidationError{}
	if v.Err() != nil {
		t.Fatal("empty ValidationError is an error")
	}
	v.Add("title", "can't be blank")
	v.Add("body", "is too long (maximum is %d characters)", 5)
	v.Add("title", "second")
	if got, want := v.Error(), "validation failed: body is too long (maximum is 5 characters); title can't be blank, second"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// BenchmarkNormalizeTags is one request's tag list of 110,000 distinct
// tags (about 1 MiB of JSON, the body limit).
func BenchmarkNormalizeTags(b *testing.B) {
	tags := make([]string, 110_000)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	for b.Loop() {
		normalizeTags(ValidationError{}, tags)
	}
}
