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
// the pages another node's write dropped (remoteRebuildDelay), so that a
// test on a loaded machine can count on the writing node's rebuild being
// done by then.
func DelayRemoteRebuilds(s *Service, d time.Duration) {
	s.rebuild.delay = d
}
