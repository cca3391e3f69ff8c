package httpx

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// textOnlyRecorder runs TextOnly on a request and reports whether the
// handler behind it ran, with what path and query, or what refuse got.
func textOnlyRecorder(t *testing.T, u *url.URL) (passed *http.Request, refused error) {
	t.Helper()
	h := TextOnly(func(_ http.ResponseWriter, _ *http.Request, err error) { refused = err })(
		http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { passed = r }))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.URL = u
	h.ServeHTTP(httptest.NewRecorder(), r)
	if (passed == nil) == (refused == nil) {
		t.Fatalf("%q: passed %v, refused %v: want exactly one", u, passed != nil, refused)
	}
	return passed, refused
}

func TestTextOnly(t *testing.T) {
	cases := []struct {
		target string
		want   error  // nil: passed on
		field  string // the field a ValidationError names
	}{
		{"/api/profiles/jake?limit=1", nil, ""},
		{"/api/profiles/J%C3%BCrgen?tag=%E2%9C%93", nil, ""},
		{"/api/profiles/a%FF", conduit.ErrNotFound, ""},
		{"/api/profiles/a%C0%AF", conduit.ErrNotFound, ""},
		{"/api/profiles/a%ED%A0%80", conduit.ErrNotFound, ""},
		{"/api/profiles/a%00", conduit.ErrNotFound, ""},
		{"/?tag=%FF", nil, "tag"},
		{"/?tag=ok&author=%00", nil, "author"},
		{"/?t%FFg=go", nil, "query"},
		{"/?a=1&a=%ED%A0%80", nil, "a"},
		{"/?%zz=%FF&ok=1", nil, ""}, // a malformed pair reaches no handler
	}
	for _, c := range cases {
		u, err := url.ParseRequestURI(c.target)
		if err != nil {
			t.Fatal(err)
		}
		passed, refused := textOnlyRecorder(t, u)
		var ve conduit.ValidationError
		switch {
		case c.want != nil:
			if !errors.Is(refused, c.want) {
				t.Errorf("%s: refused with %v, want %v", c.target, refused, c.want)
			}
		case c.field != "":
			if !errors.As(refused, &ve) || len(ve[c.field]) == 0 {
				t.Errorf("%s: refused with %v, want a ValidationError on %q", c.target, refused, c.field)
			}
		case passed == nil:
			t.Errorf("%s: refused with %v", c.target, refused)
		}
	}
}

// chunkReader returns at most n bytes per Read, to split characters.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

// readThrough reads data through TextBody, n bytes per underlying read.
func readThrough(data []byte, n int) ([]byte, error) {
	var got []byte
	var err error
	h := TextBody(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got, err = io.ReadAll(r.Body) }))
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Body = io.NopCloser(&chunkReader{data: data, n: n})
	h.ServeHTTP(httptest.NewRecorder(), r)
	return got, err
}

func TestTextBody(t *testing.T) {
	cases := []struct {
		body string
		ok   bool
	}{
		{`{"title":"Ünïcödé ✓ 😀"}`, true},
		{"", true},
		{`{"title":"a` + "\xff" + `"}`, false},
		{`{"title":"` + "\xc0\xaf" + `"}`, false},
		{`{"title":"` + "\xed\xa0\x80" + `"}`, false},
		{`{"title":"` + "\x00" + `"}`, false},
		{`{"title":"\u0000"}`, true}, // an escape: the service refuses the value
		{"😀"[:3], false},             // cut short at the end
		{"\x80", false},
	}
	for _, c := range cases {
		for n := 1; n <= 5; n++ {
			got, err := readThrough([]byte(c.body), n)
			if c.ok && (err != nil || string(got) != c.body) {
				t.Errorf("%q in reads of %d: %q, %v", c.body, n, got, err)
			}
			if !c.ok && !errors.Is(err, ErrNotText) {
				t.Errorf("%q in reads of %d: %v, want ErrNotText", c.body, n, err)
			}
		}
	}
}

// FuzzTextOnly checks that a handler behind TextOnly only ever sees a
// path and query of text, and that a path is refused as not found, a
// query as invalid input.
func FuzzTextOnly(f *testing.F) {
	for _, s := range [][2]string{{"/api/profiles/jake", "limit=1"}, {"/a\xff", ""}, {"/", "tag=%FF"}, {"/\x00", "a=%00"},
		{"/profile/..", "t%C0%AFg=1"}, {"/", "a=%ED%A0%80&b=1"}, {"/", "%zz&a=%ff"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		passed, refused := textOnlyRecorder(t, &url.URL{Path: path, RawQuery: rawQuery})
		if passed != nil {
			q, _ := url.ParseQuery(passed.URL.RawQuery)
			for name, values := range q {
				for _, v := range append(values, name) {
					if !conduit.IsText(v) {
						t.Fatalf("handler got query value %q", v)
					}
				}
			}
			if !conduit.IsText(passed.URL.Path) {
				t.Fatalf("handler got path %q", passed.URL.Path)
			}
			return
		}
		var ve conduit.ValidationError
		if errors.Is(refused, conduit.ErrNotFound) != !conduit.IsText(path) || (conduit.IsText(path) && !errors.As(refused, &ve)) {
			t.Fatalf("path %q query %q refused with %v", path, rawQuery, refused)
		}
	})
}

// FuzzTextBody checks that a body read through TextBody, however the
// reads split it, is passed on whole when it is text and refused with
// ErrNotText when it is not.
func FuzzTextBody(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "\xff", "a\xc0\xafb", "\xed\xa0\x80", "\x00", "😀", "😀"[:2], "é\x80"} {
		f.Add([]byte(s), byte(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk byte) {
		got, err := readThrough(data, int(chunk%8)+1)
		text := utf8.Valid(data) && bytes.IndexByte(data, 0) < 0
		if text && (err != nil || !bytes.Equal(got, data)) {
			t.Fatalf("%q: got %q, %v", data, got, err)
		}
		if !text && !errors.Is(err, ErrNotText) {
			t.Fatalf("%q: %v, want ErrNotText", data, err)
		}
	})
}
