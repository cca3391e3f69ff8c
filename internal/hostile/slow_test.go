//go:build linux

package hostile

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slowBodies: 200 anonymous connections send their request a byte every
// two seconds — most of them a body (API and site forms), some their
// headers — for longer than a normal request takes. Before the limiter read
// bodies outside its slots, this held every slot and every other request
// got 503. The drippers are closed after a few seconds: how the node times
// them out (408 after 10 s) is tested in internal/server.
func slowBodies(t *testing.T, s *suite) {
	const (
		conns       = 200
		headerConns = 40 // of conns: these drip their headers instead
		every       = 2 * time.Second
		hold        = 5 * time.Second
	)
	c := s.n.client("127.0.0.10")
	targets := []struct{ path, ctype string }{
		{"/api/users", "application/json"},
		{"/api/users/login", "application/json"},
		{"/api/articles", "application/json"},
		{"/login", "application/x-www-form-urlencoded"},
		{"/register", "application/x-www-form-urlencoded"},
		{"/editor", "application/x-www-form-urlencoded"},
	}
	var (
		wg       sync.WaitGroup
		closed   atomic.Int32 // connections the node closed (or answered) while dripping
		answered sync.Map     // status line → count, of early answers
	)
	stop := make(chan struct{})
	for i := range conns {
		conn, err := c.dialer().Dial("tcp", s.n.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		var head, drip string
		if i < headerConns {
			head = "GET / HTTP/1.1\r\nHost: conduit.test\r\n"
			drip = "X-Slow: " + strings.Repeat("a", 100)
		} else {
			tg := targets[i%len(targets)]
			head = fmt.Sprintf("POST %s HTTP/1.1\r\nHost: conduit.test\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n", tg.path, tg.ctype)
			drip = strings.Repeat("x", 1000)
		}
		if _, err := conn.Write([]byte(head)); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			if !dripBytes(conn, drip, every, stop) {
				closed.Add(1)
				noteAnswer(conn, &answered)
			}
		}()
	}
	time.Sleep(hold)
	close(stop)
	wg.Wait()
	t.Logf("%d dripping connections held for %v; the node closed %d of them meanwhile", conns, hold, closed.Load())
	answered.Range(func(k, v any) bool {
		t.Logf("early answer to a dripper: %q ×%d", k, v.(*atomic.Int32).Load())
		if strings.HasPrefix(k.(string), "HTTP/1.1 5") {
			t.Errorf("a dripper was answered %q", k)
		}
		return true
	})
}

// dripBytes writes s a byte every interval (the first after a random part
// of it, so that the connections do not tick together) until stop is
// closed or a write fails; it reports whether every write succeeded.
func dripBytes(conn net.Conn, s string, every time.Duration, stop <-chan struct{}) bool {
	tick := time.NewTimer(rand.N(every))
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return true
		case <-tick.C:
		}
		conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte{s[i%len(s)]}); err != nil {
			return false
		}
		tick.Reset(every)
	}
}

// noteAnswer counts the status line the node may have sent before closing.
func noteAnswer(conn net.Conn, answered *sync.Map) {
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	v, _ := answered.LoadOrStore(strings.TrimSpace(line), new(atomic.Int32))
	v.(*atomic.Int32).Add(1)
}

// neverReading: 150 connections (more than the node's 128 slots) each ask
// for the ~100 KB article six times (pipelined; as JSON, one in five as a
// page) and never read. Each offers a small window and segment size, so
// the kernel holds only ~100 KB of answers for it and the node is soon
// stuck writing. (The kernel's buffers sometimes hold two or three answers
// of a connection; with three asked, a run once saw 23 connections get all
// theirs sent, too few left stuck to prove the attack.) Before the limiter sent answers after freeing the slot,
// each such connection held its slot for the whole write timeout.
func neverReading(t *testing.T, s *suite) {
	const (
		conns     = 150
		pipelined = 6
		hold      = 4 * time.Second
	)
	apiPath, pagePath := "/api/articles/"+s.f.bigSlug, "/article/"+s.f.bigSlug
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := range conns {
		// A source address of its own, to tell in the node's log which
		// connections are stuck.
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 1, 0, byte(i+1))}, Timeout: 5 * time.Second,
			Control: smallWindow}
		conn, err := d.Dial("tcp", s.n.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, conn)
		path := apiPath
		if i%5 == 0 {
			path = pagePath
		}
		req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: conduit.test\r\n\r\n", path)
		if _, err := conn.Write([]byte(strings.Repeat(req, pipelined))); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	time.Sleep(hold)
	// The attack is real only if the node is stuck writing to these
	// connections: a request is logged once its answer is sent, so a
	// connection with fewer than all its answers logged has one stuck.
	sent := map[string]int{}
	for _, e := range s.n.logEntries(t) {
		if h, _ := e["http"].(map[string]any); h != nil && (h["path"] == apiPath || h["path"] == pagePath) {
			ip, _ := h["client_ip"].(string)
			sent[ip]++
		}
	}
	stuck := 0
	for i := range conns {
		if sent[fmt.Sprintf("127.1.0.%d", i+1)] < pipelined {
			stuck++
		}
	}
	t.Logf("%d connections never reading; the node is stuck writing to %d of them", conns, stuck)
	if stuck <= defaultMaxInFlight {
		t.Errorf("only %d connections have an answer stuck, not more than the node's %d slots: the attack did not take hold", stuck, defaultMaxInFlight)
	}
}

// defaultMaxInFlight is --max-inflight's default.
const defaultMaxInFlight = 128

// smallWindow makes a connection offer a small receive window and segment
// size (before it connects, when they are agreed).
func smallWindow(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = errors.Join(
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096),
			syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536))
	})
	return errors.Join(err, serr)
}
