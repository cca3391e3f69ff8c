package httpx_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/httpx"
)

func TestClientAddr(t *testing.T) {
	tp, err := httpx.ParseTrustedProxies("127.0.0.1, 10.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		xff    []string
		want   string
	}{
		{"no header", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"untrusted peer: header ignored", "203.0.113.7:5000", []string{"1.2.3.4"}, "203.0.113.7"},
		{"trusted proxy passes the client on", "127.0.0.1:4000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"spoofed entry left of the real client is ignored", "127.0.0.1:4000", []string{"6.6.6.6, 198.51.100.9"}, "198.51.100.9"},
		{"chain of trusted proxies", "127.0.0.1:4000", []string{"198.51.100.9, 10.1.2.3"}, "198.51.100.9"},
		{"several headers are one list", "127.0.0.1:4000", []string{"6.6.6.6", "198.51.100.9, 10.1.2.3"}, "198.51.100.9"},
		{"all hops trusted: the leftmost", "127.0.0.1:4000", []string{"10.9.9.9, 10.1.2.3"}, "10.9.9.9"},
		{"garbage stops the walk", "127.0.0.1:4000", []string{"198.51.100.9, not-an-ip"}, "127.0.0.1"},
		{"trusted proxy without header", "127.0.0.1:4000", nil, "127.0.0.1"},
		{"IPv6 proxy and client", "[::1]:4000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"entry with port", "127.0.0.1:4000", []string{"198.51.100.9:1234"}, "198.51.100.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tp.ClientAddr(r); got != tt.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNoTrustedProxiesIgnoresHeader(t *testing.T) {
	var tp httpx.TrustedProxies
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:4000"
	r.Header.Set("X-Forwarded-For", "198.51.100.9")
	if got := tp.ClientAddr(r); got != "127.0.0.1" {
		t.Fatalf("ClientAddr = %q, want the peer 127.0.0.1", got)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := httpx.ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) = nil error, want one", bad)
		}
	}
	tp, err := httpx.ParseTrustedProxies(" ,192.168.1.7/24 , ")
	if err != nil || len(tp) != 1 || tp[0].String() != "192.168.1.0/24" {
		t.Fatalf("got %v, %v; want one masked prefix 192.168.1.0/24", tp, err)
	}
}

// The request log carries the client address found through a trusted proxy.
func TestLogRecordsClientIP(t *testing.T) {
	tp, _ := httpx.ParseTrustedProxies("127.0.0.1")
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	h := httpx.Chain(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		httpx.RealIP(tp), httpx.Log(logger, nil))
	for _, c := range []struct{ remote, xff, want string }{
		{"127.0.0.1:1", "198.51.100.9", "client_ip=198.51.100.9"},
		{"203.0.113.7:1", "198.51.100.9", "client_ip=203.0.113.7"},
	} {
		buf.Reset()
		r := httptest.NewRequest("GET", "/x", nil)
		r.RemoteAddr = c.remote
		r.Header.Set("X-Forwarded-For", c.xff)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !strings.Contains(buf.String(), c.want) {
			t.Fatalf("log line %q does not contain %q", buf.String(), c.want)
		}
	}
}

// HSTS is sent on answers that reached the client over TLS, directly or
// through a trusted TLS-terminating proxy, and only then.
func TestStrictTransportSecurity(t *testing.T) {
	tp, _ := httpx.ParseTrustedProxies("10.0.0.1")
	h := httpx.StrictTransportSecurity(tp)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, c := range []struct {
		name, remote, proto string
		tls, want           bool
	}{
		{"trusted proxy, https", "10.0.0.1:1", "https", false, true},
		{"trusted proxy, chain of protos", "10.0.0.1:1", "HTTPS, http", false, true},
		{"trusted proxy, http", "10.0.0.1:1", "http", false, false},
		{"untrusted peer claiming https", "203.0.113.7:1", "https", false, false},
		{"plain http", "203.0.113.7:1", "", false, false},
		{"direct TLS", "203.0.113.7:1", "", true, true},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		got := rec.Header().Get("Strict-Transport-Security")
		if (got != "") != c.want || c.want && !strings.HasPrefix(got, "max-age=") {
			t.Errorf("%s: Strict-Transport-Security %q, want it %v", c.name, got, c.want)
		}
	}
}
