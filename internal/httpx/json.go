// Package httpx is the HTTP plumbing shared by the API and the HTML site:
// JSON bodies, the mapping of domain errors to statuses, and middleware.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
			return conduit.ValidationError{field: {"must be a " + jsonKind(typeErr.Type.String())}}
		}
		msg = "must be a JSON object"
	}
	return conduit.ValidationError{"body": {msg}}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "list"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "number"
	case strings.Contains(goType, "bool"):
		return "boolean"
	case strings.Contains(goType, "string"):
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
