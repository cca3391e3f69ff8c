package httpx

// Capacity is how many requests may hold a slot at once (MaxInFlight).
func (l *Limiter) Capacity() int { return cap(l.slots) }

// MaxBuffered is the budget of request bodies held in memory at once.
func (l *Limiter) MaxBuffered() int64 { return l.maxBuffered }
