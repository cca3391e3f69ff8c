package httpx

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// TextOnly refuses requests whose path or query string, once
// percent-decoded, is not text (conduit.IsText: valid UTF-8 without NUL)
// before any handler sees them. Such a path names nothing: refuse gets
// conduit.ErrNotFound. Such a query parameter is bad input: refuse gets a
// conduit.ValidationError naming the parameter ("query" when the name
// itself is not text). PostgreSQL refuses these strings as parameters,
// which would surface as a 500, and SQLite would store them.
//
// Form fields and JSON strings are checked by the service, field by field
// (see TextBody for the bytes of a JSON body).
func TextOnly(refuse func(http.ResponseWriter, *http.Request, error)) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !conduit.IsText(r.URL.Path) {
				refuse(w, r, conduit.ErrNotFound)
				return
			}
			if err := checkQuery(r.URL.RawQuery); err != nil {
				refuse(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// checkQuery checks every name and value of a query string as handlers
// will see them (url.Values; malformed pairs are dropped there and here).
func checkQuery(raw string) error {
	if raw == "" {
		return nil
	}
	q, _ := url.ParseQuery(raw)
	v := conduit.ValidationError{}
	for name, values := range q {
		field := name
		if !conduit.IsText(name) {
			field = "query"
		}
		for _, value := range append(values, name) {
			if !conduit.IsText(value) {
				v[field] = []string{"must be valid UTF-8 without NUL characters"}
				break
			}
		}
	}
	return v.Err()
}

// ErrNotText is the error of reading a body wrapped by TextBody once its
// bytes turn out not to be text.
var ErrNotText = errors.New("request body is not valid UTF-8 text without NUL characters")

// TextBody makes reading the request body fail with ErrNotText as soon as
// its bytes are not UTF-8 text without NUL. encoding/json would otherwise
// turn invalid bytes inside strings into U+FFFD and store that; this way a
// JSON body of bad bytes is refused as malformed (RFC 8259 requires
// UTF-8). It checks as the handler reads, so nothing is buffered twice.
// Bodies declared as binary media (an uploaded picture: image/*,
// application/octet-stream) are passed on unchecked; their handlers decode
// them as what they are.
func TextBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && !binaryBody(r) {
			r.Body = &textReader{body: r.Body}
		}
		next.ServeHTTP(w, r)
	})
}

// binaryBody reports a body declared as binary media.
func binaryBody(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return strings.HasPrefix(mt, "image/") || mt == "application/octet-stream"
}

// textReader checks the bytes it passes on. A character split across two
// reads is checked when its last byte arrives: up to utf8.UTFMax-1 bytes
// of an unfinished character are carried from one read to the next.
type textReader struct {
	body    io.ReadCloser
	pending [utf8.UTFMax]byte // the unfinished character at the end of the last read
	npend   int
	buf     []byte
	err     error
}

func (t *textReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.body.Read(p)
	if !t.check(p[:n], err == io.EOF) {
		t.err = ErrNotText
		return 0, t.err
	}
	return n, err
}

// check reports whether b, following what came before, is text so far
// (and, at the end of the body, nothing is left unfinished).
func (t *textReader) check(b []byte, end bool) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	data := b
	if t.npend > 0 {
		t.buf = append(append(t.buf[:0], t.pending[:t.npend]...), b...)
		data = t.buf
	}
	// Hold back the start of a character that may finish in the next read.
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(data[:cut]) {
		return false
	}
	t.npend = copy(t.pending[:], data[cut:])
	return !end || t.npend == 0
}

func (t *textReader) Close() error { return t.body.Close() }
