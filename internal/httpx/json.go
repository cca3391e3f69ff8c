// Package httpx is the HTTP plumbing shared by the API and the HTML site:
// JSON bodies, the mapping of domain errors to statuses, and middleware.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// MaxBodyBytes bounds every request body: the longest article fits easily.
const MaxBodyBytes = 1 << 20

// DecodeJSON reads a JSON object from the body into dst. Malformed JSON, a
// wrong type, trailing data or an over-long body come back as a
// conduit.ValidationError, so clients get a 422 that says what is wrong.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		return nil
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	msg := "is not valid JSON"
	switch {
	case errors.Is(err, io.EOF):
		msg = "can't be empty"
	case errors.As(err, &maxErr):
		msg = fmt.Sprintf("is too large (maximum is %d bytes)", maxErr.Limit)
	case errors.As(err, &syntaxErr):
		msg = fmt.Sprintf("is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		if field != "" {
			return conduit.ValidationError{field: {"must be a " + jsonKind(typeErr.Type)}}
		}
		msg = "must be a JSON object"
	}
	return conduit.ValidationError{"body": {msg}}
}

// jsonKind names the JSON kind that a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	}
	return "JSON object"
}

// WriteJSON writes v with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
