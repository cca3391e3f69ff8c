package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// fuzzArticle is shaped like the API's request bodies: nested objects,
// lists, pointers, numbers and booleans.
type fuzzArticle struct {
	Title string   `json:"title"`
	Count int      `json:"count"`
	On    *bool    `json:"on"`
	Tags  []string `json:"tagList"`
	Inner *struct {
		Body string `json:"body"`
	} `json:"inner"`
}

// fuzzFields are the exact keys of fuzzArticle, per level.
var fuzzFields = map[string]bool{"title": true, "count": true, "on": true, "tagList": true, "inner": true}

// FuzzDecodeJSON feeds DecodeJSON arbitrary bodies and content types (seed
// corpus in testdata/fuzz/FuzzDecodeJSON). It must never panic or fail
// with anything but a client error, must refuse non-JSON types, and what
// it accepts must decode as if only the keys that exactly name a field
// had been sent: no key differing in case ever reaches a field.
func FuzzDecodeJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		var got fuzzArticle
		err := DecodeJSON(httptest.NewRecorder(), req, &got)
		var (
			ve conduit.ValidationError
			p  *Problem
		)
		switch {
		case err == nil:
		case errors.As(err, &p):
			if p.Status != http.StatusUnsupportedMediaType || checkJSONType(contentType) == nil {
				t.Fatalf("problem %v for content type %q", err, contentType)
			}
			return
		case errors.As(err, &ve):
			if len(ve) == 0 {
				t.Fatal("empty validation error")
			}
			return
		default:
			t.Fatalf("error %v (%T) is no client error", err, err)
		}
		if checkJSONType(contentType) != nil {
			t.Fatalf("body accepted with content type %q", contentType)
		}
		want := decodeExactKeys(t, body)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decoded %+v, but the exact keys alone give %+v", got, want)
		}
	})
}

// decodeExactKeys decodes body with encoding/json after dropping every
// key that is not exactly a field name of fuzzArticle (or of its inner
// object).
func decodeExactKeys(t *testing.T, body []byte) fuzzArticle {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("accepted body is not JSON: %v", err)
	}
	if obj, ok := v.(map[string]any); ok {
		for k := range obj {
			if !fuzzFields[k] {
				delete(obj, k)
			}
		}
		if inner, ok := obj["inner"].(map[string]any); ok {
			for k := range inner {
				if k != "body" {
					delete(inner, k)
				}
			}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out fuzzArticle
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("exact keys of an accepted body do not decode: %v (%s)", err, b)
	}
	return out
}
