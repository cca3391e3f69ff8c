// Package auth hashes passwords and issues and verifies signed tokens. The
// same token authenticates API calls (Authorization: Token …) and browser
// sessions (an HttpOnly cookie), so no server keeps session state.
package auth

import (
	"runtime"

	"golang.org/x/crypto/bcrypt"
)

// Bcrypt hashes passwords with bcrypt at the given cost.
type Bcrypt struct {
	Cost int
	// Turns, when not nil, bounds how many hashes and checks run at once
	// (see NewTurns); nil lets every one run at once.
	Turns Turns
}

// Hash returns the bcrypt hash of password.
func (b Bcrypt) Hash(password string) (string, error) {
	cost := b.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	defer b.Turns.take()()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}

// Check reports whether password matches hash.
func (b Bcrypt) Check(hash, password string) bool {
	defer b.Turns.take()()
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// Turns bounds the bcrypt work running at once. One hash is tens of
// milliseconds of one core in one goroutine, which the scheduler shares
// its core with only every 10 ms. A burst of sign-ins or sign-ups (a
// brute-force attempt, a sign-up flood: each address may make dozens
// before it is throttled) hashing on every core at once makes every other
// request wait that long for a core, many times over. With turns, the
// hashes beyond the bound wait for their turn — those sign-ins take longer
// — and the other cores stay free for everyone else.
type Turns chan struct{}

// NewTurns lets n hashes run at once; n <= 0: half the CPUs Go runs on,
// at least one.
func NewTurns(n int) Turns {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return make(Turns, n)
}

// take waits for a turn and returns its release; nil turns never wait.
func (t Turns) take() (release func()) {
	if t == nil {
		return func() {}
	}
	t <- struct{}{}
	return func() { <-t }
}
