package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/conduit-dev/conduit/internal/httpx"
)

func TestRecordPassesThrough(t *testing.T) {
	w := httptest.NewRecorder()
	rec := httpx.Record(w)
	if rec.Status() != 0 {
		t.Fatalf("status before any write = %d, want 0", rec.Status())
	}
	rec.Header().Set("X-A", "1")
	rec.Write([]byte("hi"))
	rec.WriteHeader(http.StatusTeapot) // too late: ignored, as on a connection
	if rec.Status() != http.StatusOK || w.Code != http.StatusOK || w.Body.String() != "hi" || w.Header().Get("X-A") != "1" {
		t.Fatalf("recorded %d; sent %d %q %v; want an implicit 200 passed through", rec.Status(), w.Code, w.Body, w.Header())
	}
	if http.NewResponseController(rec).Flush() != nil || !w.Flushed {
		t.Fatal("a passing Recorder does not let the connection be flushed")
	}
}

func TestBufferKeepsUntilSend(t *testing.T) {
	w := httptest.NewRecorder()
	rec := httpx.Buffer(w)
	rec.Header().Set("Content-Type", "text/plain")
	rec.WriteHeader(http.StatusCreated)
	rec.WriteHeader(http.StatusTeapot)
	rec.Write([]byte("kept"))
	if w.Body.Len() != 0 || w.Code != http.StatusOK && w.Code != 0 {
		t.Fatalf("a buffering Recorder sent %d %q before Send", w.Code, w.Body)
	}
	if w.Header().Get("Content-Type") != "text/plain" {
		t.Fatal("headers do not go to the writer underneath")
	}
	if err := http.NewResponseController(rec).Flush(); !errors.Is(err, http.ErrNotSupported) || w.Flushed {
		t.Fatalf("flushing through a buffer: %v, flushed %v; want ErrNotSupported", err, w.Flushed)
	}
	if rec.Status() != http.StatusCreated || string(rec.Body()) != "kept" {
		t.Fatalf("kept %d %q", rec.Status(), rec.Body())
	}
	if err := rec.Send(); err != nil {
		t.Fatal(err)
	}
	if w.Code != http.StatusCreated || w.Body.String() != "kept" {
		t.Fatalf("sent %d %q, want 201 kept", w.Code, w.Body)
	}

	// A handler that writes nothing is a 200 with an empty body.
	w = httptest.NewRecorder()
	empty := httpx.Buffer(w)
	empty.Send()
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("empty response sent as %d %q", w.Code, w.Body)
	}
}

func TestDetached(t *testing.T) {
	rec := httpx.Detached()
	rec.Header().Set("Content-Type", "application/json")
	rec.WriteHeader(http.StatusConflict)
	rec.Write([]byte(`{}`))
	if rec.Status() != http.StatusConflict || string(rec.Body()) != `{}` || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("detached recorder kept %d %q %v", rec.Status(), rec.Body(), rec.Header())
	}
}
