// Package apitest sends requests to a Conduit JSON API under test. It
// imports only the standard library, so that any package's tests can use
// it without depending on another package's test setup.
package apitest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Call sends a JSON request with body to base+path, signed with token
// unless it is empty, and returns the status and the body of the answer.
// A request that gets no answer fails t.
func Call(t testing.TB, base, method, path, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
