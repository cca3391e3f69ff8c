package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/conduit-dev/conduit/internal/httpx"
)

// serve runs a node on a real listener with Run's http.Server and its
// timeouts, and returns its address.
func serve(t *testing.T, api http.Handler, limit httpx.LimitOptions) string {
	t.Helper()
	s := New(Deps{API: api, DB: &pinger{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(), Limit: limit})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln, 0, time.Second) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ln.Addr().String()
}

// dial opens a raw connection, for clients no well-behaved library would be.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoAPI reads the whole body as the API's handlers do before they touch
// the database, and answers its length.
func echoAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/echo", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, len(b))
	})
	mux.HandleFunc("GET /api/ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
	return mux
}

// Many clients that send their bodies a byte at a time (slowloris) take no
// slot: a normal client's requests, reads and writes, are served while they
// drip, and each dripper still waits for its own answer.
func TestSlowBodiesTakeNoSlot(t *testing.T) {
	addr := serve(t, echoAPI(), httpx.LimitOptions{MaxInFlight: 2, MaxQueue: 2, MaxWait: 50 * time.Millisecond, BodyTimeout: time.Minute})

	const drippers = 40
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	conns := make([]net.Conn, drippers)
	for i := range conns {
		c := dial(t, addr)
		conns[i] = c
		if _, err := io.WriteString(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // every dripper has been dripping a while

	client := &http.Client{Timeout: 10 * time.Second}
	for range 3 {
		resp, err := client.Get("http://" + addr + "/api/ping")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "pong" {
			t.Fatalf("GET during the slow bodies: %d %q, want 200 pong", resp.StatusCode, b)
		}
		resp, err = client.Post("http://"+addr+"/api/echo", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "7" {
			t.Fatalf("POST during the slow bodies: %d %q, want 200 7", resp.StatusCode, b)
		}
	}
	// The attack was still on: no dripper has had an answer.
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
			t.Fatalf("dripper %d got an answer (%d bytes, %v) before sending its body", i, n, err)
		}
	}
}

// A body that does not arrive within the body timeout is answered 408 and
// its connection closed.
func TestSlowBodyTimesOut(t *testing.T) {
	addr := serve(t, echoAPI(), httpx.LimitOptions{MaxInFlight: 2, BodyTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	io.WriteString(c, "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Fatalf("slow body: %d, close %v; want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
}

// A client that never reads its (large) answer holds no slot while the
// answer waits for it, and loses its connection once sending makes no
// progress for the write stall, long before the server's write timeout.
func TestNonReadingClientHoldsNoSlot(t *testing.T) {
	const size = 24 << 20 // well beyond what the socket buffers take
	big := bytes.Repeat([]byte("x"), size)
	started := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/big", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		w.Write(big)
	})
	mux.HandleFunc("GET /api/ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
	const stall = 500 * time.Millisecond
	addr := serve(t, mux, httpx.LimitOptions{MaxInFlight: 1, MaxWait: 10 * time.Millisecond, WriteStall: stall})

	c := dial(t, addr)
	io.WriteString(c, "GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started
	sent := time.Now()

	// With one slot, the ping is served only if the big answer gave its
	// slot back without waiting for the client.
	client := &http.Client{Timeout: 10 * time.Second}
	status := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := client.Get("http://" + addr + "/api/ping")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if status = resp.StatusCode; status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK {
		t.Fatalf("ping while a client does not read its answer: %d, want 200", status)
	}

	// Past the stall the server gave the connection up: reading now gets
	// what the socket buffers held, then the end, never the whole answer.
	time.Sleep(time.Until(sent.Add(4 * stall)))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if isTimeout(err) || n >= size {
		t.Fatalf("non-reading client: read %d of %d bytes (%v); want the connection closed part way", n, size, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
