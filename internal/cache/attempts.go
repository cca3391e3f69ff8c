package cache

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/conduit-dev/conduit/internal/conduit"
)

// Attempts is conduit.AttemptCounter with the counters in Redis, so that
// a burst of failed sign-ins costs the database nothing, and in the
// database (fallback) whenever Redis cannot be used: the breaker is open
// or a call fails. Never an error for Redis's sake.
//
// A counter is a key a:<attempt key> holding the count, expiring when its
// window ends. Counters are not kept anywhere else: a Redis that restarts
// empty, or a switch to the database and back, gives every key a fresh
// window. That weakens the limits by at most one window's allowance per
// such event, which an attacker cannot cause (Redis is not reachable from
// outside); docs/security.md states it.
type Attempts struct {
	r        *Redis
	fallback conduit.AttemptCounter
}

var _ conduit.AttemptCounter = (*Attempts)(nil)

// Attempts returns the throttling counters on this Redis, with fallback
// used whenever Redis is not.
func (r *Redis) Attempts(fallback conduit.AttemptCounter) *Attempts {
	return &Attempts{r: r, fallback: fallback}
}

func (r *Redis) attemptKey(key string) string { return r.o.Prefix + "a:" + key }

// errUnusable: the cache is not used now (breaker open, no connection).
var errUnusable = errors.New("the Redis cache is not usable")

// readAttemptsScript returns count and remaining milliseconds of each key
// (-1, -1 when it has no open window).
var readAttemptsScript = rueidis.NewLuaScript(`
local out = {}
for i, k in ipairs(KEYS) do
  local n = redis.call('GET', k)
  local t = redis.call('PTTL', k)
  if n and t > 0 then out[i] = {tonumber(n), t} else out[i] = {-1, -1} end
end
return out`)

// addAttemptsScript adds ARGV[1] to each key, opening a window of ARGV[2]
// ms for a key without one; counts never go below zero. One script: the
// increment and the expiry cannot be separated by a crash or another node.
var addAttemptsScript = rueidis.NewLuaScript(`
local d = tonumber(ARGV[1])
local out = {}
for i, k in ipairs(KEYS) do
  local n = redis.call('GET', k)
  local t = redis.call('PTTL', k)
  if n and t > 0 then
    n = math.max(tonumber(n) + d, 0)
    redis.call('SET', k, n, 'KEEPTTL')
  else
    n = math.max(d, 0)
    t = tonumber(ARGV[2])
    redis.call('SET', k, n, 'PX', t)
  end
  out[i] = {n, t}
end
return out`)

// Attempts implements conduit.AttemptCounter.
func (a *Attempts) Attempts(ctx context.Context, keys []string, now time.Time) (map[string]conduit.AttemptWindow, error) {
	ws, err := a.run(ctx, "attempts", readAttemptsScript, keys, nil, now)
	if err != nil {
		return a.fallback.Attempts(ctx, keys, now)
	}
	return ws, nil
}

// AddAttempts implements conduit.AttemptCounter.
func (a *Attempts) AddAttempts(ctx context.Context, keys []string, delta int, window time.Duration, now time.Time) (map[string]conduit.AttemptWindow, error) {
	ws, err := a.run(ctx, "add_attempts", addAttemptsScript, keys, []string{strconv.Itoa(delta), ms(window)}, now)
	if err != nil {
		return a.fallback.AddAttempts(ctx, keys, delta, window, now)
	}
	return ws, nil
}

// PurgeAttempts implements conduit.AttemptCounter: Redis expires its
// counters itself; the database may hold windows from a fallback.
func (a *Attempts) PurgeAttempts(ctx context.Context, now time.Time) (int64, error) {
	return a.fallback.PurgeAttempts(ctx, now)
}

func (a *Attempts) run(ctx context.Context, op string, s *rueidis.Lua, keys, args []string, now time.Time) (map[string]conduit.AttemptWindow, error) {
	c := a.r.cli()
	if c == nil {
		return nil, errUnusable
	}
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = a.r.attemptKey(k)
	}
	ws := map[string]conduit.AttemptWindow{}
	err := a.r.call(ctx, op, a.r.writeWait(), func(ctx context.Context) error {
		arr, err := s.Exec(ctx, c, rkeys, args).ToArray()
		if err != nil {
			return err
		}
		if len(arr) != len(keys) {
			return errors.New("attempt counters: short reply")
		}
		for i, m := range arr {
			pair, err := m.AsIntSlice()
			if err != nil || len(pair) != 2 {
				return errors.Join(errors.New("attempt counters: bad reply"), err)
			}
			if pair[0] >= 0 && pair[1] > 0 {
				ws[keys[i]] = conduit.AttemptWindow{Count: int(pair[0]), ResetAt: now.Add(time.Duration(pair[1]) * time.Millisecond)}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ws, nil
}
