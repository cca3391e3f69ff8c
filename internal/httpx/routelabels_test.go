package httpx

import (
	"net/http"
	"net/http/httptest"
	"runtime/pprof"
	"testing"
)

func TestRouteLabels(t *testing.T) {
	var got string
	var labelled bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /article/{slug}", func(w http.ResponseWriter, r *http.Request) {
		got, labelled = pprof.Label(r.Context(), "route")
	})
	h := RecordRoute(mux)
	serve := func() {
		got, labelled = "", false
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/article/x", nil))
	}
	serve()
	if labelled {
		t.Errorf("labelled %q while off", got)
	}
	LabelRoutes(true)
	defer LabelRoutes(false)
	serve()
	if !labelled || got != "GET /article/{slug}" {
		t.Errorf("route label = %q, %v; want the pattern", got, labelled)
	}
}
