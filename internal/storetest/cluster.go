package storetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/conduit-dev/conduit/internal/testproc"
)

// PGBinEnv may name the directory of initdb and postgres; the default is
// Debian's PostgreSQL 15.
const PGBinEnv = "CONDUIT_TEST_PGBIN"

// Cluster is a throwaway PostgreSQL server owned by one test: its own data
// directory in t.TempDir, its own port below 32768 on 127.0.0.1, run as a
// child process (as the "postgres" user when the test runs as root) and
// stopped when the test ends. Tests use it to stop and restart the database
// under a running Conduit; the shared server is never touched.
type Cluster struct {
	Port int
	dir  string
	bin  string
	cred *syscall.Credential
	t    testing.TB
	// settings are extra "-c name=value" of the server (a replica's delay).
	settings []string

	mu   sync.Mutex
	proc *testproc.Proc // nil when stopped
}

// StartCluster initializes and starts a cluster. Without the PostgreSQL
// binaries (or as a non-root user other than postgres) it skips t, or fails
// it when CI=true. settings are extra server settings ("name=value"); by
// default the cluster trades durability for speed (fsync and
// synchronous_commit off).
func StartCluster(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	testproc.SkipShort(t, "runs a PostgreSQL cluster of its own")
	bin := os.Getenv(PGBinEnv)
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but a throwaway PostgreSQL cluster cannot be started: "+format, args...)
		}
		t.Skipf("skipping: a throwaway PostgreSQL cluster cannot be started: "+format, args...)
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		unavailable("no initdb in %s (install postgresql-15 or set %s)", bin, PGBinEnv)
	}
	c := &Cluster{bin: bin, t: t, dir: t.TempDir(), settings: settings}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as "postgres" in a
		// directory that user owns (and can reach).
		pu, err := user.Lookup("postgres")
		if err != nil {
			unavailable("running as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(pu.Uid)
		gid, _ := strconv.Atoi(pu.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for d := filepath.Dir(c.dir); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := c.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--no-instructions", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	c.Port = testproc.StablePort(t)
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// URL is the address of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start runs the server (again) and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc != nil {
		c.t.Fatal("cluster already running")
	}
	args := []string{"-D", c.data(), "-p", strconv.Itoa(c.Port), "-k", c.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=50"}
	for _, set := range c.settings {
		args = append(args, "-c", set)
	}
	c.proc = testproc.Start(c.t, "postgres", filepath.Join(c.dir, "postgres.log"),
		c.command(filepath.Join(c.bin, "postgres"), args...))
	c.proc.WaitReady(c.t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
		}
		return err
	})
}

// Stop shuts the server down (fast shutdown: open sessions are
// disconnected) and waits for it to exit. Stopping a stopped cluster is a
// no-op.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return
	}
	c.proc.Stop(syscall.SIGINT, 20*time.Second)
	c.proc = nil
}

// StartReplica makes a streaming replica of c (pg_basebackup of the
// running cluster, then a standby on its own port) and starts it; it is
// stopped when the test ends. settings are extra server settings, e.g.
// "recovery_min_apply_delay=2s" for a replica that is reliably late.
// Databases created on c later reach the replica too.
func (c *Cluster) StartReplica(settings ...string) *Cluster {
	c.t.Helper()
	r := &Cluster{bin: c.bin, t: c.t, dir: c.t.TempDir(), cred: c.cred, settings: settings}
	if r.cred != nil {
		if err := os.Chown(r.dir, int(r.cred.Uid), int(r.cred.Gid)); err != nil {
			c.t.Fatal(err)
		}
	}
	// -R writes standby.signal and primary_conninfo: it starts as a
	// standby streaming from c.
	backup := r.command(filepath.Join(c.bin, "pg_basebackup"), "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port),
		"-U", "postgres", "-D", r.data(), "-R", "-X", "stream", "-c", "fast")
	if out, err := backup.CombinedOutput(); err != nil {
		c.t.Fatalf("pg_basebackup: %v\n%s", err, out)
	}
	r.Port = testproc.StablePort(c.t)
	r.Start()
	c.t.Cleanup(r.Stop)
	return r
}

// CreateDatabase creates database name on the cluster.
func (c *Cluster) CreateDatabase(name string) {
	c.t.Helper()
	if err := adminExec(c.URL("postgres"), "CREATE DATABASE "+name); err != nil {
		c.t.Fatalf("create database: %v", err)
	}
}

func adminExec(admin, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, sql)
	return err
}
