package idempotency_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/conduit-dev/conduit/internal/api"
	"github.com/conduit-dev/conduit/internal/auth"
	"github.com/conduit-dev/conduit/internal/cache"
	"github.com/conduit-dev/conduit/internal/conduit"
	"github.com/conduit-dev/conduit/internal/idempotency"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// The store keeps the keys.
var _ idempotency.Store = (*store.DB)(nil)

// newAPI serves the real API with idempotency keys on db.
func newAPI(t *testing.T, db *store.DB) *httptest.Server {
	t.Helper()
	keys, err := auth.ParseKeys("k1:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==")
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(keys, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	svc := conduit.NewService(db, cache.NewMemory(100), auth.Bcrypt{Cost: 4})
	h := api.New(svc, tokens, api.WithIdempotency(db, idempotency.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status   int
	body     string
	replayed bool
}

func send(t *testing.T, srv *httptest.Server, method, path, token, key, body string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Token "+token)
	}
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return reply{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header.Get("Idempotent-Replayed") == "true"}
}

func register(t *testing.T, srv *httptest.Server, name string) string {
	t.Helper()
	r := send(t, srv, "POST", "/api/users", "", "", `{"user":{"username":"`+name+`","email":"`+name+`@example.com","password":"password1"}}`)
	var out struct{ User struct{ Token string } }
	if r.status != 201 || json.Unmarshal([]byte(r.body), &out) != nil {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	return out.User.Token
}

func articleCount(t *testing.T, srv *httptest.Server, author string) int {
	t.Helper()
	r := send(t, srv, "GET", "/api/articles?author="+author, "", "", "")
	var out struct{ ArticlesCount int }
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	return out.ArticlesCount
}

const article = `{"article":{"title":"Hello","description":"d","body":"b","tagList":["x"]}}`

func TestRepeatIsReplayedNotReapplied(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := newAPI(t, db)
		tok := register(t, srv, "alice")

		first := send(t, srv, "POST", "/api/articles", tok, "key-1", article)
		second := send(t, srv, "POST", "/api/articles", tok, "key-1", article)
		if first.status != 201 || first.replayed {
			t.Fatalf("first: %+v, want a fresh 201", first)
		}
		if second.status != 201 || !second.replayed || second.body != first.body {
			t.Fatalf("repeat: %+v\nwant the first response replayed: %s", second, first.body)
		}
		if n := articleCount(t, srv, "alice"); n != 1 {
			t.Fatalf("%d articles after a repeated create, want 1", n)
		}
		// A different body under the same key is an error, not a replay.
		if r := send(t, srv, "POST", "/api/articles", tok, "key-1", strings.Replace(article, "Hello", "Other", 1)); r.status != 422 ||
			r.body != `{"errors":{"Idempotency-Key":["was already used for a different request"]}}`+"\n" {
			t.Fatalf("same key, other body: %+v, want 422 in the API's error shape", r)
		}
		// Without a key, or with a new one, writes apply again.
		send(t, srv, "POST", "/api/articles", tok, "", article)
		send(t, srv, "POST", "/api/articles", tok, "key-2", article)
		if n := articleCount(t, srv, "alice"); n != 3 {
			t.Fatalf("%d articles, want 3", n)
		}
		// A client error is remembered too: the repeat gets the same 422.
		bad := `{"article":{"title":""}}`
		r1 := send(t, srv, "POST", "/api/articles", tok, "key-3", bad)
		r2 := send(t, srv, "POST", "/api/articles", tok, "key-3", bad)
		if r1.status != 422 || r2.status != 422 || !r2.replayed || r1.body != r2.body {
			t.Fatalf("invalid request and its repeat: %+v / %+v", r1, r2)
		}
		// Another user's identical key is theirs alone.
		bob := register(t, srv, "bob")
		if r := send(t, srv, "POST", "/api/articles", bob, "key-1", article); r.status != 201 || r.replayed {
			t.Fatalf("bob with alice's key: %+v, want his own fresh 201", r)
		}
		// Keys are validated.
		if r := send(t, srv, "POST", "/api/articles", tok, strings.Repeat("k", 256), article); r.status != 422 ||
			!strings.HasPrefix(r.body, `{"errors":{"Idempotency-Key":["must be`) {
			t.Fatalf("over-long key: %+v, want 422 in the API's error shape", r)
		}
	})
}

// Identical requests racing (a client retrying while its first try is still
// running on another node): the write happens once; the others are told to
// retry (409) or get the replay.
func TestConcurrentDuplicatesApplyOnce(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := newAPI(t, db)
		tok := register(t, srv, "carol")
		// Favorite is a counter: applying it twice would show.
		created := send(t, srv, "POST", "/api/articles", tok, "", article)
		var a struct{ Article struct{ Slug string } }
		json.Unmarshal([]byte(created.body), &a)
		comment := `{"comment":{"body":"once"}}`

		var wg sync.WaitGroup
		replies := make(chan reply, 12)
		for range 12 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies <- send(t, srv, "POST", "/api/articles/"+a.Article.Slug+"/comments", tok, "dup", comment)
			}()
		}
		wg.Wait()
		close(replies)
		fresh := 0
		for r := range replies {
			switch {
			case r.status == 200 && !r.replayed:
				fresh++
			case r.status == 200 && r.replayed, r.status == 409:
			default:
				t.Errorf("reply %+v, want 200 or 409", r)
			}
		}
		if fresh != 1 {
			t.Fatalf("%d requests ran, want exactly 1", fresh)
		}
		r := send(t, srv, "GET", "/api/articles/"+a.Article.Slug+"/comments", "", "", "")
		if n := strings.Count(r.body, `"once"`); n != 1 {
			t.Fatalf("%d comments after 12 identical keyed requests, want 1: %s", n, r.body)
		}
	})
}

// Anonymous callers share no key space: a key someone else used first,
// with a body of their own, does not stand in the way of a caller's own
// request; the same caller repeating the same body still gets its write
// applied once.
func TestAnonymousKeysCannotBeSquatted(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := newAPI(t, db)
		signUp := func(name string) string {
			return `{"user":{"username":"` + name + `","email":"` + name + `@example.com","password":"password1"}}`
		}
		// The squatter learned (or guessed) the key the victim's app will send.
		if r := send(t, srv, "POST", "/api/users", "", "victim-key", signUp("squatter")); r.status != 201 {
			t.Fatalf("squatter: %+v", r)
		}
		first := send(t, srv, "POST", "/api/users", "", "victim-key", signUp("victim"))
		if first.status != 201 || first.replayed || !strings.Contains(first.body, `"username":"victim"`) {
			t.Fatalf("victim after a squatter took the key: %+v, want its own fresh 201", first)
		}
		again := send(t, srv, "POST", "/api/users", "", "victim-key", signUp("victim"))
		if !again.replayed {
			t.Fatalf("victim's repeat: %+v, want the first answer's replay, not a second sign-up", again)
		}
	})
}

// Nothing is kept for an anonymous request that applied nothing (a
// refused sign-up, a write without credentials): its repeat runs again,
// so that anonymous callers, whom no limit counts, cannot fill the key
// table. A signed-in user's refused request is kept and replayed.
func TestAnonymousAnswersThatAppliedNothingAreNotKept(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		srv := newAPI(t, db)
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/api/users", `{"user":{"username":"bad name","email":"x@example.com","password":"password1"}}`},
			{"POST", "/api/articles", article},
			{"POST", "/api/users/login", `{"user":{"email":"nobody@example.com","password":"password1"}}`},
		} {
			first := send(t, srv, r.method, r.path, "", "anon-key", r.body)
			again := send(t, srv, r.method, r.path, "", "anon-key", r.body)
			if first.status < 400 || again.status != first.status || again.replayed {
				t.Errorf("anonymous %s %s and its repeat: %+v / %+v; want the same refusal, run again", r.method, r.path, first, again)
			}
		}
		tok := register(t, srv, "dora")
		bad := `{"article":{"title":""}}`
		first := send(t, srv, "POST", "/api/articles", tok, "anon-key", bad)
		again := send(t, srv, "POST", "/api/articles", tok, "anon-key", bad)
		if first.status != 422 || again.status != 422 || !again.replayed {
			t.Errorf("signed-in refusal and its repeat: %+v / %+v; want the repeat replayed", first, again)
		}
	})
}

// An answer marked Cache-Control: no-store (it carries credentials) is
// never kept for replay. A repeat of a request that applied nothing (a
// sign-in) runs again; a repeat of one that applied a write is told so
// with a 409, without the credentials.
func TestNoStoreAnswersAreNotReplayed(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var issued atomic.Int64
		mux := http.NewServeMux()
		credentials := func(w http.ResponseWriter) {
			n := issued.Add(1)
			w.Header().Set("Cache-Control", "private, no-store")
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"token":"secret-%d"}`, n)
		}
		mux.HandleFunc("POST /signin", func(w http.ResponseWriter, r *http.Request) { credentials(w) })
		mux.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
			n := issued.Load()
			u := conduit.User{Username: fmt.Sprintf("u%d", n), Email: fmt.Sprintf("u%d@example.com", n), PasswordHash: "h",
				CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
			if err := db.CreateUser(r.Context(), &u); err != nil {
				api.WriteError(w, r, err)
				return
			}
			credentials(w)
		})
		h := idempotency.Middleware(db, idempotency.Options{WriteError: api.WriteError,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})(mux)
		srv := httptest.NewServer(h)
		defer srv.Close()

		first := send(t, srv, "POST", "/signin", "", "in", `{"password":"p"}`)
		again := send(t, srv, "POST", "/signin", "", "in", `{"password":"p"}`)
		if first.body != `{"token":"secret-1"}` || again.replayed || again.body != `{"token":"secret-2"}` {
			t.Fatalf("sign-in and its repeat: %+v / %+v; want the repeat run again", first, again)
		}

		first = send(t, srv, "POST", "/signup", "", "up", `{"password":"p"}`)
		again = send(t, srv, "POST", "/signup", "", "up", `{"password":"p"}`)
		if first.status != 200 || first.body != `{"token":"secret-3"}` {
			t.Fatalf("sign-up: %+v", first)
		}
		if again.status != http.StatusConflict || !again.replayed || strings.Contains(again.body, "secret") ||
			!strings.HasPrefix(again.body, `{"errors":{"Idempotency-Key":["was used by a request that was applied`) {
			t.Fatalf("sign-up repeat: %+v; want a replayed 409 in the API's shape without the token", again)
		}
		if n := issued.Load(); n != 3 {
			t.Fatalf("%d answers with credentials made, want 3 (the sign-up not run twice)", n)
		}
	})
}
