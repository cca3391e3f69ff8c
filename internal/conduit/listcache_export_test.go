package conduit

// AwaitListRebuilds waits until s has no background rebuild running or
// queued (WithListRebuilds): call it after the write that queued them.
func AwaitListRebuilds(s *Service) {
	if s.rebuild != nil {
		s.rebuild.idle.Wait()
	}
}
