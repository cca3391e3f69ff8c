package conduit

import "time"

// AwaitListRebuilds waits until s has no background rebuild running or
// queued (WithListRebuilds): call it after the write that queued them.
func AwaitListRebuilds(s *Service) {
	if s.rebuild != nil {
		s.rebuild.idle.Wait()
	}
}

// DelayRemoteRebuilds makes s wait between d/3 and d before rebuilding
// the pages a write dropped on hearing of it (remoteRebuildDelay): so
// that a test on a loaded machine can count on the writing node's own
// rebuild being done by then, or keep those rebuilds out of a test.
func DelayRemoteRebuilds(s *Service, d time.Duration) {
	s.rebuild.delay = d
}
