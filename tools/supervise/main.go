// Command supervise runs one command and stays until it, and every process
// it left behind, has exited, reaping them all: a local runner's stand-in
// for an init system. The local runners (scripts/stage4.sh) start servers
// detached; without it, a Patroni killed as a lost machine leaves its
// PostgreSQL re-parented to PID 1, which on a machine without an init
// that reaps (a container, a sandbox) stays behind as a zombie or, worse,
// keeps running.
//
// Usage:
//
//	supervise [-pidfile FILE] [-leftovers SIGNAL] -- command [args…]
//
// It becomes a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so
// orphaned descendants are re-parented to it; writes the command's PID to
// FILE; passes SIGTERM, SIGINT and SIGHUP on to the command; and when the
// command has exited, signals the descendants still running (SIGTERM by
// default; INT suits a PostgreSQL server: fast shutdown), SIGKILLs them
// after 15 s, and exits with the command's status once none is left.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER from <linux/prctl.h>.
const prSetChildSubreaper = 36

func main() {
	status, err := run(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "supervise:", err)
		os.Exit(2)
	}
	os.Exit(status)
}

// run returns the command's exit status once nothing is left to reap.
func run(args []string) (int, error) {
	fs := flag.NewFlagSet("supervise", flag.ContinueOnError)
	pidfile := fs.String("pidfile", "", "write the command's PID here")
	leftovers := fs.String("leftovers", "TERM", "signal for descendants still running after the command exits: TERM, INT, QUIT or KILL")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return 0, errors.New("no command given")
	}
	sig, ok := map[string]syscall.Signal{"TERM": syscall.SIGTERM, "INT": syscall.SIGINT, "QUIT": syscall.SIGQUIT, "KILL": syscall.SIGKILL}[*leftovers]
	if !ok {
		return 0, fmt.Errorf("-leftovers %q: want TERM, INT, QUIT or KILL", *leftovers)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return 0, fmt.Errorf("become a subreaper: %w", e)
	}
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	child := cmd.Process.Pid
	if *pidfile != "" {
		if err := os.WriteFile(*pidfile, []byte(strconv.Itoa(child)+"\n"), 0o644); err != nil {
			cmd.Process.Kill()
		}
	}
	go func() {
		for s := range signals {
			cmd.Process.Signal(s)
		}
	}()

	// Reap everything; os/exec's Wait is not used, so this loop sees the
	// command's exit too.
	status, exited := 0, false
	var killAt time.Time
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		switch {
		case errors.Is(err, syscall.ECHILD):
			return status, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return 0, err
		case pid == child:
			exited = true
			status = ws.ExitStatus()
			if ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
			signalOrphans(sig)
			killAt = time.Now().Add(15 * time.Second)
			continue
		case pid > 0:
			continue // an orphan reaped
		}
		if exited && !killAt.IsZero() && time.Now().After(killAt) {
			signalOrphans(syscall.SIGKILL)
			killAt = time.Time{}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signalOrphans sends sig to the processes re-parented to this one.
func signalOrphans(sig syscall.Signal) {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			pid, _ := strconv.Atoi(strings.Fields(s)[0])
			syscall.Kill(pid, sig)
		}
	}
}
