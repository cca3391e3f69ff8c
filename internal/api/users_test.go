package api_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestRegisterAndLogin(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		var got struct{ User userDTO }
		a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
			"username": "Alice", "email": " Alice@Example.com ", "password": "correct horse",
		}}).want(t, http.StatusCreated, &got)
		if got.User.Username != "Alice" || got.User.Email != "alice@example.com" || got.User.Token == "" ||
			got.User.Bio != "" || !strings.HasPrefix(got.User.Image, a.url+"/media/default-avatar.") {
			t.Fatalf("registered user = %+v", got.User)
		}
		if !strings.Contains(a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
			"username": "bob", "email": "bob@example.com", "password": "correct horse",
		}}).header.Get("Content-Type"), "json") {
			t.Error("register answer is not JSON")
		}

		t.Run("invalid registrations", func(t *testing.T) {
			cases := []struct {
				name   string
				user   map[string]string
				fields []string
			}{
				{"missing everything", map[string]string{}, []string{"username", "email", "password"}},
				{"missing username", map[string]string{"email": "c@example.com", "password": "12345678"}, []string{"username"}},
				{"missing email", map[string]string{"username": "carol", "password": "12345678"}, []string{"email"}},
				{"missing password", map[string]string{"username": "carol", "email": "c@example.com"}, []string{"password"}},
				{"blank username", map[string]string{"username": "  ", "email": "c@example.com", "password": "12345678"}, []string{"username"}},
				{"bad email", map[string]string{"username": "carol", "email": "not-an-email", "password": "12345678"}, []string{"email"}},
				{"short password", map[string]string{"username": "carol", "email": "c@example.com", "password": "short"}, []string{"password"}},
				{"long password", map[string]string{"username": "carol", "email": "c@example.com", "password": strings.Repeat("p", 73)}, []string{"password"}},
				{"username with spaces", map[string]string{"username": "car ol", "email": "c@example.com", "password": "12345678"}, []string{"username"}},
				{"username too long", map[string]string{"username": strings.Repeat("c", 41), "email": "c@example.com", "password": "12345678"}, []string{"username"}},
				{"duplicate username", map[string]string{"username": "Alice", "email": "other@example.com", "password": "12345678"}, []string{"username"}},
				{"duplicate username other case", map[string]string{"username": "aLICE", "email": "other@example.com", "password": "12345678"}, []string{"username"}},
				{"duplicate email", map[string]string{"username": "alice2", "email": "alice@example.com", "password": "12345678"}, []string{"email"}},
				{"duplicate email other case", map[string]string{"username": "alice2", "email": "ALICE@example.COM", "password": "12345678"}, []string{"email"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					errs := a.do("POST", "/api/users", "", map[string]any{"user": c.user}).
						wantErrors(t, http.StatusUnprocessableEntity, c.fields...)
					if len(errs) != len(c.fields) {
						t.Errorf("errors = %v, want exactly fields %v", errs, c.fields)
					}
				})
			}
			a.do("POST", "/api/users", "", `{}`).wantErrors(t, http.StatusUnprocessableEntity, "username", "email", "password")
		})

		t.Run("login", func(t *testing.T) {
			cases := []struct {
				name, email, password string
				status                int
				fields                []string
			}{
				{"ok", "alice@example.com", "correct horse", 200, nil},
				{"email in other case", "ALICE@example.com", "correct horse", 200, nil},
				{"wrong password", "alice@example.com", "wrong horse!", 401, nil},
				{"unknown email", "nobody@example.com", "correct horse", 401, nil},
				{"missing email", "", "correct horse", 422, []string{"email"}},
				{"missing password", "alice@example.com", "", 422, []string{"password"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := a.do("POST", "/api/users/login", "", map[string]any{"user": map[string]string{"email": c.email, "password": c.password}})
					if c.status != 200 {
						r.wantErrors(t, c.status, c.fields...)
						return
					}
					var got struct{ User userDTO }
					r.want(t, 200, &got)
					if got.User.Username != "Alice" || got.User.Token == "" {
						t.Errorf("login answer = %+v", got.User)
					}
					// The token works.
					var me struct{ User userDTO }
					a.do("GET", "/api/user", got.User.Token, nil).want(t, 200, &me)
					if me.User.Username != "Alice" || me.User.Email != "alice@example.com" {
						t.Errorf("current user = %+v", me.User)
					}
				})
			}
		})
	})
}

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		u := a.register("upd")
		other := a.register("taken")
		art := a.createArticle(u, newArticle{Title: "Mine"})
		a.createArticle(u, newArticle{Title: "Mine too"})

		put := func(token string, fields map[string]any) response {
			return a.do("PUT", "/api/user", token, map[string]any{"user": fields})
		}

		t.Run("bio and image, other fields kept", func(t *testing.T) {
			var got struct{ User userDTO }
			put(u.token, map[string]any{"bio": "I write", "image": "https://img.example/me.png"}).want(t, 200, &got)
			if got.User.Bio != "I write" || got.User.Image != "https://img.example/me.png" ||
				got.User.Username != u.username || got.User.Email != u.email || got.User.Token == "" {
				t.Fatalf("updated user = %+v", got.User)
			}
			p := a.profile(u.username, "")
			if p.Bio != "I write" || p.Image != "https://img.example/me.png" {
				t.Errorf("profile after update = %+v", p)
			}
		})

		t.Run("invalid", func(t *testing.T) {
			cases := []struct {
				name   string
				fields map[string]any
				field  string
			}{
				{"duplicate username", map[string]any{"username": other.username}, "username"},
				{"duplicate username other case", map[string]any{"username": strings.ToUpper(other.username)}, "username"},
				{"duplicate email", map[string]any{"email": other.email}, "email"},
				{"blank username", map[string]any{"username": ""}, "username"},
				{"blank email", map[string]any{"email": " "}, "email"},
				{"bad email", map[string]any{"email": "nope"}, "email"},
				{"short password", map[string]any{"password": "short"}, "password"},
				{"image not a URL", map[string]any{"image": "javascript:alert(1)"}, "image"},
				{"bio too long", map[string]any{"bio": strings.Repeat("b", 2001)}, "bio"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					put(u.token, c.fields).wantErrors(t, http.StatusUnprocessableEntity, c.field)
				})
			}
			// Nothing was written by the refused updates.
			var me struct{ User userDTO }
			a.do("GET", "/api/user", u.token, nil).want(t, 200, &me)
			if me.User.Username != u.username || me.User.Email != u.email || me.User.Bio != "I write" {
				t.Errorf("user after refused updates = %+v", me.User)
			}
		})

		t.Run("password change then login", func(t *testing.T) {
			var changed struct{ User userDTO }
			put(u.token, map[string]any{"password": "brand new secret"}).want(t, 200, &changed)
			// The password change revoked the old token and handed out a
			// new one, which works.
			a.do("GET", "/api/user", u.token, nil).wantErrors(t, http.StatusUnauthorized)
			u.token = changed.User.Token
			a.do("GET", "/api/user", u.token, nil).want(t, 200, nil)
			login := func(pw string) response {
				return a.do("POST", "/api/users/login", "", map[string]any{"user": map[string]string{"email": u.email, "password": pw}})
			}
			login(u.password).wantErrors(t, http.StatusUnauthorized)
			login("brand new secret").want(t, 200, nil)
			// An empty password means "unchanged".
			put(u.token, map[string]any{"password": ""}).want(t, 200, nil)
			login("brand new secret").want(t, 200, nil)
			u.password = "brand new secret"
		})

		t.Run("username and email change", func(t *testing.T) {
			newName := u.username + "_renamed"
			var got struct{ User userDTO }
			put(u.token, map[string]any{"username": newName, "email": "Renamed@Example.com"}).want(t, 200, &got)
			if got.User.Username != newName || got.User.Email != "renamed@example.com" {
				t.Fatalf("updated user = %+v", got.User)
			}
			// The old token still names the same account.
			var me struct{ User userDTO }
			a.do("GET", "/api/user", u.token, nil).want(t, 200, &me)
			if me.User.Username != newName {
				t.Errorf("current user after rename = %+v", me.User)
			}
			a.do("GET", "/api/profiles/"+u.username, "", nil).wantErrors(t, http.StatusNotFound)
			if p := a.profile(newName, ""); p.Username != newName {
				t.Errorf("profile = %+v", p)
			}
			// Articles show the new name, and the author filter follows it.
			if got := a.article(art.Slug, "").Author.Username; got != newName {
				t.Errorf("article author after rename = %q", got)
			}
			if l := a.list("/api/articles?author="+newName, ""); l.ArticlesCount != 2 {
				t.Errorf("articles by new name = %d, want 2", l.ArticlesCount)
			}
			a.do("POST", "/api/users/login", "", map[string]any{"user": map[string]string{"email": "renamed@example.com", "password": u.password}}).want(t, 200, nil)
			// The old name is free again.
			a.do("POST", "/api/users", "", map[string]any{"user": map[string]string{
				"username": u.username, "email": "fresh@example.com", "password": "12345678",
			}}).want(t, http.StatusCreated, nil)
		})
	})
}

func TestProfilesAndFollow(t *testing.T) {
	t.Parallel()
	eachAPI(t, func(t *testing.T, a *testAPI) {
		alice, bob := a.register("alice"), a.register("bob")

		t.Run("profile", func(t *testing.T) {
			p := a.profile(bob.username, "")
			if p.Username != bob.username || p.Following {
				t.Errorf("anonymous view of bob = %+v", p)
			}
			if p := a.profile(strings.ToUpper(bob.username), alice.token); p.Username != bob.username {
				t.Errorf("profile by name in other case = %+v", p)
			}
			a.do("GET", "/api/profiles/nobody-here", "", nil).wantErrors(t, http.StatusNotFound)
		})

		followPath := "/api/profiles/" + bob.username + "/follow"
		t.Run("follow", func(t *testing.T) {
			for range 2 { // idempotent
				var got struct{ Profile profileDTO }
				a.do("POST", followPath, alice.token, nil).want(t, 200, &got)
				if !got.Profile.Following || got.Profile.Username != bob.username {
					t.Fatalf("follow answer = %+v", got.Profile)
				}
			}
			if !a.profile(bob.username, alice.token).Following {
				t.Error("alice does not see that she follows bob")
			}
			if a.profile(bob.username, "").Following {
				t.Error("anonymous viewer sees following = true")
			}
			if a.profile(alice.username, bob.token).Following {
				t.Error("following is not symmetric, yet bob follows alice")
			}
		})

		t.Run("follow yourself", func(t *testing.T) {
			a.do("POST", "/api/profiles/"+alice.username+"/follow", alice.token, nil).wantErrors(t, http.StatusUnprocessableEntity)
		})
		t.Run("follow unknown", func(t *testing.T) {
			a.do("POST", "/api/profiles/nobody-here/follow", alice.token, nil).wantErrors(t, http.StatusNotFound)
			a.do("DELETE", "/api/profiles/nobody-here/follow", alice.token, nil).wantErrors(t, http.StatusNotFound)
		})

		t.Run("unfollow", func(t *testing.T) {
			for range 2 { // idempotent
				var got struct{ Profile profileDTO }
				a.do("DELETE", followPath, alice.token, nil).want(t, 200, &got)
				if got.Profile.Following {
					t.Fatalf("unfollow answer = %+v", got.Profile)
				}
			}
			if a.profile(bob.username, alice.token).Following {
				t.Error("still following after unfollow")
			}
		})
	})
}
