package conduit

import "time"

// KeepListsLong makes s keep anonymous first pages for a minute instead
// of a second, so that a test on a slow machine can tell a page that
// survived a write from one that expired.
func KeepListsLong(s *Service) {
	s.lists = newListCache(time.Minute, listCacheMax, time.Now)
	s.listTTL = time.Minute
}

// EntryTTL is the lifetime s gives a cached value (see entryTTL).
func EntryTTL(s *Service) time.Duration { return s.entryTTL() }
