package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/conduit"
)

func TestStatus(t *testing.T) {
	cases := []struct {
		err    error
		status int
	}{
		{conduit.ValidationError{"title": {"can't be blank"}}, 422},
		{fmt.Errorf("wrapped: %w", conduit.ValidationError{"x": {"y"}}), 422},
		{conduit.ErrNotFound, 404},
		{fmt.Errorf("load: %w", conduit.ErrNotFound), 404},
		{conduit.ErrForbidden, 403},
		{conduit.ErrInvalidCredentials, 401},
		{conduit.ErrUnauthenticated, 401},
		{conduit.ErrUnavailable, 503},
		{context.DeadlineExceeded, 503},
		{context.Canceled, 499},
		{errors.New("disk on fire at /var/lib/secret"), 500},
	}
	for _, c := range cases {
		status, msg := Status(c.err)
		if status != c.status {
			t.Errorf("Status(%v) = %d, want %d", c.err, status, c.status)
		}
		if status == 500 && strings.Contains(msg, "secret") {
			t.Errorf("500 message leaks the cause: %q", msg)
		}
	}
}

// Errors are logged by the logger given to Log, with the request id, and
// only for 5xx.
func TestLogErrorUsesRequestLogger(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	h := Log(logger, nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		LogError(r, 404, conduit.ErrNotFound)
		LogError(r, 500, errors.New("db exploded"))
		w.WriteHeader(500)
	}))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Request-Id", "req-42")
	h.ServeHTTP(httptest.NewRecorder(), req)
	out := logs.String()
	if !strings.Contains(out, `"msg":"request failed"`) || !strings.Contains(out, `"error":"db exploded"`) ||
		!strings.Contains(out, `"request_id":"req-42"`) {
		t.Errorf("error not in the request logger:\n%s", out)
	}
	if strings.Contains(out, "not found") {
		t.Errorf("a 404 was logged as an error:\n%s", out)
	}
}

func TestLogMiddleware(t *testing.T) {
	var logs strings.Builder
	var observed []int
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	mux.HandleFunc("GET /id", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(RequestID(r.Context()))) })
	h := Chain(mux, Log(logger, func(r *http.Request, status int, _ time.Duration) { observed = append(observed, status) }))

	cases := []struct {
		path, reqID string
		status      int
		keepID      bool
	}{
		{"/ok", "", 200, false},
		{"/panic", "", 500, false},
		{"/missing", "", 404, false},
		{"/id", "abc_DEF-123", 200, true},
		{"/id", "has spaces", 200, false},
		{"/id", strings.Repeat("a", 65), 200, false},
	}
	for _, c := range cases {
		req := httptest.NewRequest("GET", c.path, nil)
		if c.reqID != "" {
			req.Header.Set("X-Request-Id", c.reqID)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s: status %d, want %d", c.path, rec.Code, c.status)
		}
		id := rec.Header().Get("X-Request-Id")
		if id == "" || (id == c.reqID) != c.keepID {
			t.Errorf("%s with id %q: answered id %q", c.path, c.reqID, id)
		}
		if c.path == "/id" && rec.Body.String() != id {
			t.Errorf("handler saw request id %q, header says %q", rec.Body.String(), id)
		}
	}
	if len(observed) != len(cases) || observed[1] != 500 {
		t.Errorf("observed statuses %v", observed)
	}
	if !strings.Contains(logs.String(), `"panic":"kaboom"`) {
		t.Errorf("panic not logged:\n%s", logs.String())
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) Middleware {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				next.ServeHTTP(w, r)
			})
		}
	}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { order = append(order, "handler") }), mw("a"), mw("b"))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if strings.Join(order, ",") != "a,b,handler" {
		t.Errorf("order = %v", order)
	}
}

func TestDecodeJSON(t *testing.T) {
	type dst struct {
		Name  string   `json:"name"`
		Count int      `json:"count"`
		On    *bool    `json:"on"`
		Tags  []string `json:"tags"`
		Inner struct {
			X string `json:"x"`
		} `json:"inner"`
	}
	cases := []struct {
		body, field, msg string
	}{
		{`{"name":"a","count":1}`, "", ""},
		{`{"unknown":1}`, "", ""},
		{`null`, "", ""},
		{``, "body", "can't be empty"},
		{`{`, "body", "is not valid JSON"},
		{`{"name":"a"} x`, "body", "is not valid JSON"},
		{`[]`, "body", "must be a JSON object"},
		{`{"name":1}`, "name", "must be a string"},
		{`{"count":"1"}`, "count", "must be a number"},
		{`{"count":1.5}`, "count", "must be a number"},
		{`{"on":"yes"}`, "on", "must be a boolean"},
		{`{"tags":"a"}`, "tags", "must be a list"},
		{`{"tags":[1]}`, "tags", "must be a string"},
		{`{"inner":"x"}`, "inner", "must be a JSON object"},
		{`{"inner":{"x":[]}}`, "x", "must be a string"},
		{`{"name":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "body", "is too large"},
		// Keys must name fields exactly; keys naming no field are ignored.
		{`{"NAME":"a"}`, "name", `was sent as "NAME"`},
		{`{"name":"a","Name":"b"}`, "name", `was sent as "Name"`},
		{`{"Name":"b","name":"a"}`, "name", `was sent as "Name"`},
		{`{"inner":{"X":"a"}}`, "x", `was sent as "X"`},
		{`{"tagList":["a"],"TAGS":[]}`, "tags", `was sent as "TAGS"`},
		{`{"unknown":{"NAME":1},"UNKNOWN":[{"X":1}]}`, "", ""},
	}
	for _, c := range cases {
		req := httptest.NewRequest("POST", "/", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		var d dst
		err := DecodeJSON(httptest.NewRecorder(), req, &d)
		if c.field == "" {
			if err != nil {
				t.Errorf("%.40q: %v", c.body, err)
			}
			continue
		}
		var ve conduit.ValidationError
		if !errors.As(err, &ve) || len(ve[c.field]) != 1 || !strings.HasPrefix(ve[c.field][0], c.msg) {
			t.Errorf("%.40q: err = %v, want %s %q", c.body, err, c.field, c.msg)
		}
	}
}

// The API takes JSON only: a body declared as anything else is refused
// with 415 before it is read; no Content-Type at all is accepted.
func TestDecodeJSONContentType(t *testing.T) {
	for _, c := range []struct {
		contentType string
		ok          bool
	}{
		{"", true},
		{"application/json", true},
		{"application/json; charset=utf-8", true},
		{"Application/JSON", true},
		{"application/vnd.api+json", true},
		{"text/plain", false},
		{"text/plain; charset=utf-8", false},
		{"application/x-www-form-urlencoded", false},
		{"multipart/form-data; boundary=x", false},
		{"application/jsonx", false},
		{";;;", false},
	} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"a"}`))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		var d struct {
			Name string `json:"name"`
		}
		err := DecodeJSON(httptest.NewRecorder(), req, &d)
		var p *Problem
		switch {
		case c.ok && (err != nil || d.Name != "a"):
			t.Errorf("%q: %v, decoded %+v; want it accepted", c.contentType, err, d)
		case !c.ok && (!errors.As(err, &p) || p.Status != http.StatusUnsupportedMediaType || d.Name != ""):
			t.Errorf("%q: %v, decoded %+v; want 415 and nothing decoded", c.contentType, err, d)
		}
	}
}
