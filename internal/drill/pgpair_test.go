//go:build linux

package drill

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgPair is a throwaway PostgreSQL primary with one streaming standby that
// it replicates to synchronously, both children of the test, on free
// loopback ports. Clients are given a multi-host URL that only accepts a
// server that takes writes (target_session_attrs=read-write), so after
// failover (the primary's processes SIGKILLed, the standby promoted) they
// reconnect to the new primary by themselves, as they would through
// Patroni's HAProxy in stage 4, without a balancer in the test.
//
// Synchronous replication (synchronous_commit = on) is what makes every
// commit a client was told of survive the loss of the primary: the primary
// acknowledges a commit only once the standby has flushed it, and before
// that the transaction is not visible to other sessions either (so no
// relay or worker can act on a commit that is then lost).
type pgPair struct {
	pgbin        string
	cred         *syscall.Credential
	dir          string
	ports        [2]int
	primary      *proc
	standby      *proc
	URL          string // the conduit database, multi-host, read-write only
	standbyAdmin string
}

// startPGPair initialises the primary, clones the standby from it with
// pg_basebackup, starts both and creates the conduit database once the
// standby replicates synchronously. Ready in a few seconds.
func startPGPair(t *testing.T, procs *procSet, dir string, ports [2]int) *pgPair {
	t.Helper()
	pgbin := os.Getenv("PGBIN")
	if pgbin == "" {
		pgbin = "/usr/lib/postgresql/15/bin"
	}
	for _, b := range []string{"initdb", "postgres", "pg_basebackup"} {
		if _, err := os.Stat(filepath.Join(pgbin, b)); err != nil {
			t.Fatalf("PostgreSQL binary %s not found in %s (set PGBIN or apt-get install postgresql): %v", b, pgbin, err)
		}
	}
	p := &pgPair{pgbin: pgbin, dir: filepath.Join(dir, "pg"), ports: ports}
	if err := os.Mkdir(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs a 'postgres' user for PostgreSQL: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		// Its directory must be reachable by that user.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
				os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	primaryData, standbyData := filepath.Join(p.dir, "primary"), filepath.Join(p.dir, "standby")
	p.run(t, "initdb", "-D", primaryData, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-instructions")
	common := []string{"-k", p.dir, "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200",
		"-c", "wal_keep_size=256MB", "-c", "synchronous_commit=on"}
	p.primary = procs.start(t, "postgres", filepath.Join(dir, "pg-primary.log"), p.cred, nil,
		append([]string{filepath.Join(pgbin, "postgres"), "-D", primaryData, "-p", strconv.Itoa(ports[0]),
			"-c", "cluster_name=primary", "-c", "synchronous_standby_names=standby1"}, common...)...)
	primaryAdmin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ports[0])
	waitPG(t, primaryAdmin, p.primary, 60*time.Second)
	p.run(t, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-U", "postgres", "-D", standbyData,
		"-R", "-X", "stream", "-c", "fast", "-C", "-S", "standby1")
	// The standby's own settings: it has no standby of its own to wait for
	// once promoted, and cluster_name names it to the primary.
	p.standby = procs.start(t, "postgres", filepath.Join(dir, "pg-standby.log"), p.cred, nil,
		append([]string{filepath.Join(pgbin, "postgres"), "-D", standbyData, "-p", strconv.Itoa(ports[1]),
			"-c", "cluster_name=standby1", "-c", "synchronous_standby_names="}, common...)...)
	p.standbyAdmin = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", ports[1])
	waitPG(t, p.standbyAdmin, p.standby, 60*time.Second)

	ctx := context.Background()
	c, err := pgx.Connect(ctx, primaryAdmin)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var state string
		err := c.QueryRow(ctx, `SELECT coalesce(max(sync_state), '') FROM pg_stat_replication WHERE application_name = 'standby1'`).Scan(&state)
		if err == nil && state == "sync" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby does not replicate synchronously after 60 s (state %q, %v)", state, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE conduit"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/conduit?sslmode=disable&target_session_attrs=read-write",
		ports[0], ports[1])
	return p
}

// run runs one of PostgreSQL's tools as its user.
func (p *pgPair) run(t *testing.T, tool string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.pgbin, tool), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
}

// failover loses the primary (SIGKILL of the postmaster and every backend
// of it: its process group) and promotes the standby after pause, the time
// a failure detector would take. It returns when the new primary takes
// writes.
func (p *pgPair) failover(t *testing.T, pause time.Duration) error {
	t.Helper()
	p.primary.SignalGroup(syscall.SIGKILL)
	if err := p.primary.wait(10 * time.Second); err == nil {
		return fmt.Errorf("the primary exited cleanly after SIGKILL?")
	}
	time.Sleep(pause)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, p.standbyAdmin)
	if err != nil {
		return fmt.Errorf("connect to the standby: %w", err)
	}
	defer c.Close(ctx)
	var promoted bool
	if err := c.QueryRow(ctx, `SELECT pg_promote(true, 50)`).Scan(&promoted); err != nil || !promoted {
		return fmt.Errorf("promote the standby: %v (promoted: %v)", err, promoted)
	}
	return nil
}

// waitPG waits until url accepts connections.
func waitPG(t *testing.T, url string, p *proc, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, url)
		if err == nil {
			c.Close(ctx)
			cancel()
			return
		}
		cancel()
		if ended, err := p.Exited(); ended {
			t.Fatalf("postgres exited: %v (see pg-*.log in the test's directory)", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres did not accept connections within %v: %v", d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
