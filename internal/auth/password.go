// Package auth hashes passwords and issues and verifies signed tokens. The
// same token authenticates API calls (Authorization: Token …) and browser
// sessions (an HttpOnly cookie), so no server keeps session state.
package auth

import "golang.org/x/crypto/bcrypt"

// Bcrypt hashes passwords with bcrypt at the given cost.
type Bcrypt struct{ Cost int }

// Hash returns the bcrypt hash of password.
func (b Bcrypt) Hash(password string) (string, error) {
	cost := b.Cost
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	return string(h), err
}

// Check reports whether password matches hash.
func (Bcrypt) Check(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}
