package httpx

import (
	"bytes"
	"net/http"
)

// Recorder is the one http.ResponseWriter wrapper of the plumbing. It
// remembers the status a handler wrote; a buffering Recorder also keeps the
// body instead of sending it, so that the middleware that made it can
// store, cache or replay the response, or send it only after it has let go
// of something the handler held (a concurrency slot).
//
// Headers always go to the map of the writer underneath.
type Recorder struct {
	http.ResponseWriter
	status   int
	buffered bool
	body     bytes.Buffer
}

// Record passes everything through to w and remembers the status.
func Record(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w} }

// Buffer keeps the status and the body for Send (or for Body).
func Buffer(w http.ResponseWriter) *Recorder { return &Recorder{ResponseWriter: w, buffered: true} }

// Detached is a buffering Recorder with a header map of its own and no
// writer underneath: for a response that is made to be stored, not sent.
func Detached() *Recorder { return Buffer(detached{http.Header{}}) }

// Status is the status written so far, 0 if nothing was written.
func (r *Recorder) Status() int { return r.status }

// Body is the kept body of a buffering Recorder.
func (r *Recorder) Body() []byte { return r.body.Bytes() }

// WriteHeader records the first status (later calls change nothing, as on
// a real connection).
func (r *Recorder) WriteHeader(code int) {
	if r.status != 0 {
		return
	}
	r.status = code
	if !r.buffered {
		r.ResponseWriter.WriteHeader(code)
	}
}

// Write records an implicit 200.
func (r *Recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if r.buffered {
		return r.body.Write(b)
	}
	return r.ResponseWriter.Write(b)
}

// Send writes a buffering Recorder's status (200 if the handler wrote
// none) and body to the writer underneath.
func (r *Recorder) Send() error {
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	r.ResponseWriter.WriteHeader(status)
	_, err := r.ResponseWriter.Write(r.body.Bytes())
	return err
}

// Unwrap lets http.ResponseController reach the connection through a
// passing Recorder. A buffering one hides it: flushing or setting deadlines
// from behind a buffer would act on a response that was not sent yet.
func (r *Recorder) Unwrap() http.ResponseWriter {
	if r.buffered {
		return nil
	}
	return r.ResponseWriter
}

// detached is a ResponseWriter that only has headers.
type detached struct{ h http.Header }

func (d detached) Header() http.Header       { return d.h }
func (detached) Write(b []byte) (int, error) { return len(b), nil }
func (detached) WriteHeader(int)             {}
