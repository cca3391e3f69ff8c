package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/conduit-dev/conduit/internal/auth"
	seeder "github.com/conduit-dev/conduit/internal/seed"
	"github.com/conduit-dev/conduit/internal/store"
	"github.com/conduit-dev/conduit/internal/storetest"
)

// Seeded users have no picture either: the API gives them the default
// avatar like anyone else, and their articles are found by search (the
// bulk load fills the index).
func TestSeededDataThroughTheAPI(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		hash, err := auth.Bcrypt{Cost: 4}.Hash("password")
		if err != nil {
			t.Fatal(err)
		}
		storetest.Seed(t, db, seeder.Options{Seed: 5, Scale: 0.0005, PasswordHash: hash})
		a := newAPI(t, db)
		p := a.profile(seeder.Username(7), "")
		if !strings.HasPrefix(p.Image, a.url+"/media/default-avatar.") {
			t.Errorf("seeded user's image = %q, want the default avatar", p.Image)
		}
		list := a.list("/api/articles?limit=1", "")
		word := strings.Split(list.Articles[0].Title, " ")[0]
		var got searchDTO
		a.do("GET", "/api/search?q="+word, "", nil).want(t, http.StatusOK, &got)
		if got.ArticlesCount == 0 {
			t.Errorf("search for %q in seeded titles found nothing", word)
		}
	})
}
