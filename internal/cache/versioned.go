package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Versioned values: a value built from data that many writes change (a
// list page) is kept in Redis for every node together with the versions
// of what it was built from, and read back only while those versions are
// still current. A version key holds a random token; every write that
// changes what the key stands for deletes it (Delete, with the write's
// other keys), and the next node that keeps a value gives it a new token
// (versionsScript). So a value stored with the tokens it read is current
// exactly while each token is: a write acknowledged before a read began
// has deleted one of them (the fence makes that read see it), and no
// token comes back.
//
// Format of a stored value: "<digest>\n<version keys, space-separated>\n
// <bytes>", the digest a hash of the tokens (version keys hold no
// whitespace: the caller names them).

// GetCurrent returns the value SetCurrent stored under key if every
// version it was stored with is still current. Reads go through the near
// cache and the fence like Get: a write acknowledged before the call, on
// any node, is seen.
func (r *Redis) GetCurrent(ctx context.Context, key string) ([]byte, bool) {
	kind := kindOf(key)
	stored, ok := r.getStored(ctx, key)
	if !ok {
		r.m.versioned.WithLabelValues(kind, "absent").Inc()
		return nil, false
	}
	digest, rest, ok1 := strings.Cut(string(stored), "\n")
	keys, value, ok2 := strings.Cut(rest, "\n")
	if !ok1 || !ok2 {
		r.m.versioned.WithLabelValues(kind, "absent").Inc()
		return nil, false
	}
	versions, ok := r.nearVersions(ctx, strings.Fields(keys))
	if !ok || versionDigest(versions) != digest {
		r.m.versioned.WithLabelValues(kind, "changed").Inc()
		return nil, false
	}
	r.m.versioned.WithLabelValues(kind, "hit").Inc()
	return []byte(value), true
}

// getStored reads a versioned value from Redis itself, not through the
// near cache: its versions, not its copy, decide whether it is current,
// and the list caches keep the pages they serve in memory of their own,
// so a near copy would only take room from the values.
func (r *Redis) getStored(ctx context.Context, key string) ([]byte, bool) {
	c := r.cli()
	if c == nil {
		r.m.bypassed.WithLabelValues(kindOf(key)).Inc()
		return nil, false
	}
	var gen, stored string
	err := r.call(ctx, "get", r.o.Timeout, func(ctx context.Context) error {
		resps := c.DoMulti(ctx, c.B().Get().Key(r.genKey()).Build(), c.B().Get().Key(r.valKey(key)).Build())
		var err1, err2 error
		gen, err1 = resps[0].ToString()
		stored, err2 = resps[1].ToString()
		return errors.Join(notNil(err1), notNil(err2))
	})
	if err != nil {
		return nil, false
	}
	return unstamp(stored, gen)
}

// SetCurrent stores value under key for ttl with the current versions of
// versionKeys (a missing one gets a new token), read in one script, if
// keep still says yes once they are read.
//
// keep is the caller's proof that value was built after every change that
// the versions read reflect: it is asked after the versions are read, and
// must be false if this node learnt of a change to any of them since
// (before) value was built. A write's Delete of a version key reaches
// this node's connection, as a push, before the reply to any later read
// of it, so a token that is newer than the value's data is seen together
// with its change, and keep refuses. A token older than a change read
// later only makes the stored value a miss.
func (r *Redis) SetCurrent(ctx context.Context, key string, value []byte, versionKeys []string, ttl time.Duration, keep func() bool) {
	c := r.cli()
	if c == nil {
		return
	}
	keys := make([]string, 0, len(versionKeys)+1)
	tokens := make([]string, 0, len(versionKeys)+1)
	tokens = append(tokens, ms(ttl))
	for _, vk := range versionKeys {
		keys = append(keys, r.valKey(vk))
		tokens = append(tokens, randomToken())
	}
	keys = append(keys, r.genKey())
	var versions []string
	if err := r.call(ctx, "versions", r.o.Timeout, func(ctx context.Context) (err error) {
		versions, err = versionsScript.Exec(ctx, c, keys, tokens).AsStrSlice()
		return err
	}); err != nil || len(versions) != len(versionKeys) {
		return
	}
	if !keep() {
		return
	}
	stored := versionDigest(versions) + "\n" + strings.Join(versionKeys, " ") + "\n" + string(value)
	r.Set(ctx, key, []byte(stored), ttl)
}

// versionsScript returns the versions under KEYS[1..n] (KEYS[n+1]: the
// generation), giving each that has none of this generation (never set,
// expired, or deleted by a write: a tombstone) the new token in ARGV[i+1].
// A token is no copy of anything that could be stale, so it needs no fill
// lease: the check and the set are one step.
//
// A version lives twice the ttl of the value being stored (ARGV[1] ms),
// and one found with less than that ttl left is given twice it again: a
// value never outlives a version it was stored with. Before, a version
// lived one ttl from the keep that made it, and one that no write
// replaced for that long (listver:all, which only a delete replaces, and
// every page names; a quiet bucket) expired under every page kept with it
// since, which all missed at once, however long they had left. The
// extension is rare (at most once per ttl per version): a PEXPIRE is a
// change to Redis's tracking, which drops the nodes' near copies of the
// version, as a write's delete would, but keeps the token, so no stored
// value becomes a miss.
var versionsScript = rueidis.NewLuaScript(`
local g = redis.call('GET', KEYS[#KEYS]) or '0'
local ttl = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS - 1 do
  local v = redis.call('GET', KEYS[i])
  local p = v and string.find(v, ':', 1, true)
  if p and p > 1 and string.sub(v, 1, p - 1) == g and p < #v then
    out[i] = string.sub(v, p + 1)
    local left = redis.call('PTTL', KEYS[i])
    if left >= 0 and left < ttl then
      redis.call('PEXPIRE', KEYS[i], 2 * ttl)
    end
  else
    redis.call('SET', KEYS[i], g .. ':' .. ARGV[i + 1], 'PX', 2 * ttl)
    out[i] = ARGV[i + 1]
  end
end
return out`)

// nearVersions reads the versions under keys through the near cache,
// behind the fence (a write acknowledged before the call is seen), in one
// call: false if one is missing or Redis did not answer.
func (r *Redis) nearVersions(ctx context.Context, keys []string) ([]string, bool) {
	c := r.cli()
	if c == nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	sent := r.now()
	if err := r.fence(ctx, c); err != nil {
		r.m.errors.WithLabelValues("get").Inc()
		return nil, false
	}
	cmds := make([]rueidis.CacheableTTL, 0, len(keys)+1)
	cmds = append(cmds, rueidis.CT(c.B().Get().Key(r.genKey()).Cache(), nearTTL))
	for _, k := range keys {
		cmds = append(cmds, rueidis.CT(c.B().Get().Key(r.valKey(k)).Cache(), nearTTL))
	}
	resps := c.DoMultiCache(ctx, cmds...)
	r.m.observe("get", sent, r.now())
	versions := make([]string, 0, len(keys))
	gen := ""
	roundTrip := false
	for i, res := range resps {
		v, err := res.ToString()
		if err = notNil(err); err != nil {
			r.health.fail(sent)
			r.m.errors.WithLabelValues("get").Inc()
			return nil, false
		}
		roundTrip = roundTrip || !res.IsCacheHit()
		if i == 0 {
			gen = v
			continue
		}
		b, ok := unstamp(v, gen)
		if !ok || len(b) == 0 {
			return nil, false
		}
		versions = append(versions, string(b))
	}
	if roundTrip {
		r.health.ok(sent) // as in get: only a round trip vouches for the near cache
	}
	return versions, true
}

func versionDigest(versions []string) string {
	h := sha256.Sum256([]byte(strings.Join(versions, "\n")))
	return hex.EncodeToString(h[:16])
}
