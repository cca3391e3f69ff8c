package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// The "writes" mix drives only the RealWorld API, so it runs against any
// implementation of it (Conduit or a peer), side by side: it needs no seeded
// data and no Conduit-only endpoint. Before the run it registers its own
// users through POST /users (one per connection, with a name unique to the
// run) and has each write a few articles; the run then sends article
// creates, comments, favorites and follows. A favorite of an article the
// user already favors is sent as its unfavorite instead, and the same for
// follows: every request is a real change (a peer may refuse a duplicate
// favorite), and the run can go on for as long as it is asked to.
//
// Each worker owns one user, so its favorites and follows are known
// without asking the server and never race with another worker's.

// writeTags are the tags the writes mix uses: few, so tag rows are shared
// as they are in real data.
var writeTags = []string{"bench", "golang", "postgres", "sqlite", "writes", "realworld", "http", "json"}

const (
	writeArticlesPerUser = 3
	writePassword        = "bench-password-123"
)

// writeState is what one user has favored and followed, for the toggles.
// Only the worker owning the user touches it.
type writeState struct {
	favored  map[string]bool
	followed map[string]bool
}

func writeEndpoints(api string) []endpoint {
	article := func(w *world, r *rand.Rand, u *session) call {
		n := r.Uint64()
		return call{method: "POST", path: api + "/articles", body: jsonBody(map[string]any{"article": map[string]any{
			// The run's id keeps titles (and so slugs) of runs with the
			// same seed apart: a peer may refuse a taken slug.
			"title":       fmt.Sprintf("Benchmark article %s %x", w.run, n),
			"description": "Written by conduit bench",
			"body":        strings.Repeat("A paragraph of benchmark text. ", 20),
			"tagList":     []string{writeTags[r.IntN(len(writeTags))], writeTags[r.IntN(len(writeTags))]},
		}})}
	}
	// Slugs and usernames are taken uniformly: the writes spread over
	// rows as they would with many users, rather than all hitting one.
	favorite := func(w *world, r *rand.Rand, u *session) call {
		slug := w.slugs[r.IntN(len(w.slugs))]
		return toggle(u.writes.favored, slug, api+"/articles/"+url.PathEscape(slug)+"/favorite", "write unfavorite")
	}
	follow := func(w *world, r *rand.Rand, u *session) call {
		// Anyone but oneself, uniformly: one of the first n-1, and the
		// last in place of oneself.
		name := w.usernames[r.IntN(len(w.usernames)-1)]
		if name == u.username {
			name = w.usernames[len(w.usernames)-1]
		}
		return toggle(u.writes.followed, name, api+"/profiles/"+url.PathEscape(name)+"/follow", "write unfollow")
	}
	comment := func(w *world, r *rand.Rand, u *session) call {
		return call{method: "POST", path: api + "/articles/" + url.PathEscape(w.slugs[r.IntN(len(w.slugs))]) + "/comments",
			body: jsonBody(map[string]any{"comment": map[string]any{"body": "A comment from conduit bench."}})}
	}
	return []endpoint{
		{name: "write article", weight: 1, auth: true, write: true, make: article},
		{name: "write comment", weight: 1, auth: true, write: true, make: comment},
		{name: "write favorite", weight: 1, auth: true, write: true, make: favorite},
		{name: "write follow", weight: 1, auth: true, write: true, make: follow},
		// Never chosen (weight 0, last): the toggles above record here.
		{name: "write unfavorite", auth: true, write: true},
		{name: "write unfollow", auth: true, write: true},
	}
}

// setupWriters registers n users through the API and has each write
// writeArticlesPerUser articles: the world of the writes mix.
func setupWriters(ctx context.Context, client *http.Client, cfg Config, n int) (*world, error) {
	if n < 2 {
		n = 2 // a follow needs someone else
	}
	api := cfg.BaseURL + cfg.APIPrefix
	run := fmt.Sprintf("%08x", rand.Uint32())
	w := &world{sessions: make([]session, n), tags: writeTags, owned: true, run: run}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	sem := make(chan struct{}, 4) // password hashing is slow on purpose
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("wb%s_%d", run, i)
			tok, err := register(ctx, client, api, name)
			var slugs []string
			for k := 0; err == nil && k < writeArticlesPerUser; k++ {
				var slug string
				slug, err = createArticle(ctx, client, api, tok, fmt.Sprintf("Setup %s %d", name, k))
				slugs = append(slugs, slug)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			w.sessions[i] = session{username: name, token: tok,
				writes: &writeState{favored: map[string]bool{}, followed: map[string]bool{}}}
			w.usernames = append(w.usernames, name)
			w.slugs = append(w.slugs, slugs...)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("writes mix setup: %w", firstErr)
	}
	fmt.Fprintf(cfg.Log, "registered %d users through %s/users, %d articles\n", n, api, len(w.slugs))
	return w, nil
}

// postJSON posts body (with a token if set) and decodes a 2xx answer into out.
func postJSON(ctx context.Context, client *http.Client, u, token string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var b [300]byte
		n, _ := resp.Body.Read(b[:])
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, b[:n])
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func register(ctx context.Context, client *http.Client, api, name string) (string, error) {
	var out struct {
		User struct {
			Token string `json:"token"`
		} `json:"user"`
	}
	body := jsonBody(map[string]any{"user": map[string]string{
		"username": name, "email": name + "@bench.example.com", "password": writePassword}})
	if err := postJSON(ctx, client, api+"/users", "", body, &out); err != nil {
		return "", err
	}
	if out.User.Token != "" {
		return out.User.Token, nil
	}
	// Some implementations answer a sign-up without a token: sign in.
	body = jsonBody(map[string]any{"user": map[string]string{"email": name + "@bench.example.com", "password": writePassword}})
	if err := postJSON(ctx, client, api+"/users/login", "", body, &out); err != nil {
		return "", err
	}
	if out.User.Token == "" {
		return "", fmt.Errorf("POST %s/users/login: no token in the answer", api)
	}
	return out.User.Token, nil
}

func createArticle(ctx context.Context, client *http.Client, api, token, title string) (string, error) {
	var out struct {
		Article struct {
			Slug string `json:"slug"`
		} `json:"article"`
	}
	body := jsonBody(map[string]any{"article": map[string]any{
		"title": title, "description": "Set up by conduit bench", "body": "Set up by conduit bench.",
		"tagList": []string{writeTags[0]}}})
	if err := postJSON(ctx, client, api+"/articles", token, body, &out); err != nil {
		return "", err
	}
	if out.Article.Slug == "" {
		return "", fmt.Errorf("POST %s/articles: no slug in the answer", api)
	}
	return out.Article.Slug, nil
}

// toggle is a POST to path, or its undo (a DELETE, reported as undo) when
// the session's last request on key was that POST, so that every request
// changes something: on is the session's set of keys now on.
func toggle(on map[string]bool, key, path, undo string) call {
	if on[key] {
		delete(on, key)
		return call{method: "DELETE", path: path, as: undo}
	}
	on[key] = true
	return call{method: "POST", path: path}
}
