// Package httpx is the HTTP plumbing shared by the API and the HTML site:
// JSON bodies, the mapping of domain errors to statuses, and middleware.
package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
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
//
// It is stricter than encoding/json in two ways. A body declared as
// anything but JSON (text/plain, a form) is refused with 415: the API
// speaks JSON only, and a browser can send text/plain across origins
// without asking first. A missing Content-Type is accepted, as simple
// clients omit it. And object keys must name dst's fields exactly: a key
// that matches one only when case is ignored ("TITLE" for "title"), which
// encoding/json would use, is refused. Keys naming no field are ignored,
// so clients may send more than the spec's fields.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return decodeError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	err = dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		err = checkKeys(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(dst))
	}
	return decodeError(err)
}

// checkJSONType refuses a declared media type other than JSON.
func checkJSONType(contentType string) error {
	if contentType == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		return nil
	}
	return &Problem{Status: http.StatusUnsupportedMediaType, Field: "body", Msg: "must be sent as application/json"}
}

// decodeError turns what reading and decoding a body returned into the
// error a client is shown.
func decodeError(err error) error {
	if err == nil {
		return nil
	}
	var (
		ve        conduit.ValidationError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		maxErr    *http.MaxBytesError
	)
	msg := "is not valid JSON"
	switch {
	case errors.As(err, &ve):
		return ve
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

// checkKeys walks one JSON value (known to be valid) alongside the Go type
// t it was decoded into, and refuses an object key that names a field of
// t only when case is ignored.
func checkKeys(dec *json.Decoder, t reflect.Type) error {
	t = indirect(t)
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := tok.(string)
			var next reflect.Type // nil: a value nothing is decoded into
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				name, ft, exact := jsonField(t, key)
				if name != "" && !exact {
					return conduit.ValidationError{name: {fmt.Sprintf("was sent as %q; field names are case-sensitive", key)}}
				}
				next = ft
			case t.Kind() == reflect.Map:
				next = t.Elem()
			}
			if err := checkKeys(dec, next); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for dec.More() {
			if err := checkKeys(dec, elem); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	return err
}

// jsonField finds the field of struct type t that encoding/json would fill
// from key: its JSON name, its type, and whether key is that name exactly.
// An exact match wins over a case-insensitive one, as in encoding/json.
func jsonField(t reflect.Type, key string) (name string, ft reflect.Type, exact bool) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		n, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && n == "" && indirect(f.Type).Kind() == reflect.Struct {
			// An embedded struct's fields are promoted.
			en, eft, eexact := jsonField(indirect(f.Type), key)
			if eexact {
				return en, eft, true
			}
			if en != "" && name == "" {
				name, ft = en, eft
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if n == "" {
			n = f.Name
		}
		if n == key {
			return n, f.Type, true
		}
		if name == "" && strings.EqualFold(n, key) {
			name, ft = n, f.Type
		}
	}
	return name, ft, false
}

// indirect is t without its pointers.
func indirect(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
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
