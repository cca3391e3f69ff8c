package cache

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Positions keeps the read-your-writes positions of stage 4 (WAL positions
// of writes, per user and the highest of all) in Redis, where every node
// reads them, so a write does not wait for every node to hear of it
// (store.PositionStore; docs/stage5.md). Keys under the cache's prefix:
//
//	p:u:<user>  the user's highest write position (TTL)
//	p:latest    the highest write position of all (TTL)
//	p:floor     every position lost with an earlier Redis is at most this (TTL)
//	p:epoch     the cache generation the positions belong to, or
//	            "pending:<token>" while a floor is being taken
//
// Positions are trusted only while p:epoch equals the cache's generation:
// a Redis restarted empty has no epoch, and a node whose write could not
// record its position gives up like an invalidation that could not land
// (the generation is bumped when Redis answers again). Until a node has
// taken the primary's WAL position as the new floor (Floor), reads that
// need a position go to the primary.
//
// The TTL only has to outlast the replicas' lag cut-off: a replica within
// it has replayed every write older than that anyway.
type Positions struct {
	r   *Redis
	ttl time.Duration
}

// NewPositions keeps positions in r's Redis for ttl.
func NewPositions(r *Redis, ttl time.Duration) *Positions {
	return &Positions{r: r, ttl: ttl}
}

func (p *Positions) userKey(user int64) string {
	return p.r.o.Prefix + "p:u:" + strconv.FormatInt(user, 10)
}
func (p *Positions) latestKey() string { return p.r.o.Prefix + "p:latest" }
func (p *Positions) floorKey() string  { return p.r.o.Prefix + "p:floor" }
func (p *Positions) epochKey() string  { return p.r.o.Prefix + "p:epoch" }

// recordScript max-merges ARGV[1] into KEYS[2..] (KEYS[1] is the latest).
var recordScript = rueidis.NewLuaScript(`
local lsn = tonumber(ARGV[1])
for i = 1, #KEYS do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  if lsn > v then v = lsn end
  redis.call('SET', KEYS[i], string.format('%.0f', v), 'PX', ARGV[2])
end
return 1`)

// Record stores lsn as the position of users and of the latest write. If
// Redis does not take it, Record retries and returns at the latest when
// no node can still be trusting positions vouched for before Redis
// stopped answering (the cache's lease); the node then stops trusting
// positions until a new generation and floor have been set.
func (p *Positions) Record(ctx context.Context, lsn uint64, users []int64) error {
	keys := []string{p.latestKey()}
	for _, u := range users {
		if u != 0 {
			keys = append(keys, p.userKey(u))
		}
	}
	args := []string{strconv.FormatUint(lsn, 10), ms(p.ttl)}
	r := p.r
	start := r.now()
	for {
		if b := r.client.Load(); b != nil {
			var answered time.Time
			err := r.call(context.WithoutCancel(ctx), "position", r.writeWait(), func(ctx context.Context) error {
				if err := recordScript.Exec(ctx, b.c, keys, args).Error(); err != nil {
					return err
				}
				answered = r.now()
				return nil
			})
			if err == nil {
				// A read that begins after this write is answered fences
				// behind it on any node (fence.go), so its near cache has
				// dropped the old position.
				r.waitFence(answered)
				return nil
			}
		}
		if !r.now().Before(r.health.waitUntil(start)) {
			r.health.giveUp()
			r.logger.Warn("read-your-writes position did not reach Redis; positions are not trusted until Redis answers again and a new floor is taken")
			return errors.New("position not stored in Redis")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Need returns the position a read must see: user's (fresh: the latest of
// all), at least the floor; ok is false when it cannot be known (Redis not
// usable, or positions lost and no floor taken yet).
func (p *Positions) Need(ctx context.Context, user int64, fresh bool) (uint64, bool) {
	r := p.r
	c := r.cli()
	if c == nil {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	sent := r.now()
	// Every position recorded by a write acknowledged before this read
	// must have reached the near cache.
	if err := r.fence(ctx, c); err != nil {
		return 0, false
	}
	key := p.latestKey()
	if !fresh {
		key = p.userKey(user)
	}
	resps := c.DoMultiCache(ctx,
		rueidis.CT(c.B().Get().Key(r.genKey()).Cache(), nearTTL),
		rueidis.CT(c.B().Get().Key(p.epochKey()).Cache(), nearTTL),
		rueidis.CT(c.B().Get().Key(p.floorKey()).Cache(), nearTTL),
		rueidis.CT(c.B().Get().Key(key).Cache(), nearTTL))
	r.m.observe("position", sent, r.now())
	vals := make([]string, len(resps))
	hit := true
	for i, resp := range resps {
		v, err := resp.ToString()
		if err = notNil(err); err != nil {
			r.health.fail(sent)
			r.m.errors.WithLabelValues("position").Inc()
			return 0, false
		}
		vals[i] = v
		hit = hit && resp.IsCacheHit()
	}
	if !hit {
		r.health.ok(sent)
	}
	gen := vals[0]
	if gen == "" {
		gen = "0"
	}
	if vals[1] != gen {
		return 0, false // positions lost, or of another generation
	}
	floor, _ := strconv.ParseUint(vals[2], 10, 64)
	n, _ := strconv.ParseUint(vals[3], 10, 64)
	return max(floor, n), true
}

// beginFloor claims the floor when positions are not trusted: it returns
// the claim, "pending:<token>:<generation>" ("" when the epoch is current
// or another node is taking it).
var beginFloor = rueidis.NewLuaScript(`
local g = redis.call('GET', KEYS[2]) or '0'
local e = redis.call('GET', KEYS[1])
if e == g then return '' end
if e and string.sub(e, 1, 8) == 'pending:' and redis.call('PTTL', KEYS[1]) > 0 then return '' end
local claim = 'pending:' .. ARGV[1] .. ':' .. g
redis.call('SET', KEYS[1], claim, 'PX', ARGV[2])
return claim`)

// endFloor sets the floor if the claim is still there: a Redis restarted
// in between lost it, and the floor must then be read again. So must it
// if a new generation started meanwhile (a position that did not reach
// Redis may be newer than the floor read): the claim is dropped.
var endFloor = rueidis.NewLuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[1] ~= 'pending:' .. ARGV[4] .. ':' .. (redis.call('GET', KEYS[2]) or '0') then
  redis.call('DEL', KEYS[1])
  return 0
end
local lsn = tonumber(ARGV[2])
for i = 3, 4 do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  if lsn > v then v = lsn end
  redis.call('SET', KEYS[i], string.format('%.0f', v), 'PX', ARGV[3])
end
redis.call('SET', KEYS[1], redis.call('GET', KEYS[2]) or '0')
return 1`)

// Floor takes a new floor when the positions in Redis are not trusted
// (lost in a restart, or of an earlier generation): current must return
// the primary's WAL position, read after the call that found them
// untrusted, so it covers every write whose position was lost. It does
// nothing when the positions are trusted or Redis is not usable.
func (p *Positions) Floor(ctx context.Context, current func(context.Context) (uint64, error)) error {
	r := p.r
	c := r.cli()
	if c == nil {
		return errors.New("redis not usable")
	}
	keys := []string{p.epochKey(), r.genKey(), p.floorKey(), p.latestKey()}
	var claim string
	token := randomToken()
	if err := r.call(ctx, "position", r.writeWait(), func(ctx context.Context) (err error) {
		claim, err = beginFloor.Exec(ctx, c, keys[:2], []string{token, "5000"}).ToString()
		return err
	}); err != nil || claim == "" {
		return err
	}
	lsn, err := current(ctx)
	if err != nil {
		return err
	}
	var done int64
	var answered time.Time
	if err := r.call(ctx, "position", r.writeWait(), func(ctx context.Context) (err error) {
		done, err = endFloor.Exec(ctx, c, keys, []string{claim, strconv.FormatUint(lsn, 10), ms(p.ttl), token}).AsInt64()
		answered = r.now()
		return err
	}); err != nil {
		return err
	}
	// As after Record: a read that begins once the floor is set must not
	// take an older floor from a near cache (the epoch it reads may be the
	// new one), so the floor is set only after the fence.
	r.waitFence(answered)
	if done == 1 {
		r.logger.Info("read-your-writes positions in Redis start again from the primary's position", slog.Uint64("floor", lsn))
	}
	return nil
}
