package cache

import (
	"context"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// GetOrLoadMany returns the values under keys: those present from the
// cache, the others from one call of load, which gets the missing keys
// and returns the values of those it found (a key it leaves out is
// returned as absent and stored as nothing). It is GetOrLoad for the
// twenty favorites counts of a list page: one database statement for the
// counts the page misses, not one per article. Each loaded value is stored
// under the condition GetOrLoad stores under: not if its key was deleted,
// or the cache cleared, while the load ran. Unlike GetOrLoad it does not
// join the loads of other readers (a page's keys are rarely all missed by
// two readers at once, and a miss costs one statement for all of them).
// Errors of load are returned and nothing is stored.
func (m *Memory) GetOrLoadMany(ctx context.Context, keys []string, ttl time.Duration, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error) {
	out, missing := getMany(ctx, m.Get, keys)
	if len(missing) == 0 {
		return out, nil
	}
	m.mu.Lock()
	began := m.seq
	m.mu.Unlock()
	got, err := load(missing)
	if err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range missing {
		v, ok := got[k]
		if !ok {
			continue
		}
		out[k] = v
		// As in fill; an eviction by an earlier put of this loop counts
		// too (it may have dropped the tombstone of a later key).
		if e, ok := m.items[k]; ok && e.seq > began || m.cleared > began || m.evicted > began {
			continue
		}
		m.put(now, k, entry{value: v, expiresAt: now.Add(ttl)})
	}
	return out, nil
}

// getMany returns the values get finds for keys and the keys it misses,
// each once.
func getMany(ctx context.Context, get func(context.Context, string) ([]byte, bool), keys []string) (map[string][]byte, []string) {
	out := make(map[string][]byte, len(keys))
	var missing []string
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k] {
			continue
		}
		seen[k] = true
		if v, ok := get(ctx, k); ok {
			out[k] = v
		} else {
			missing = append(missing, k)
		}
	}
	return out, missing
}

// GetOrLoadMany is Memory.GetOrLoadMany while the invalidation channel is
// up and live; otherwise it loads every key and stores nothing (see
// GetOrLoad).
func (c *Coherent) GetOrLoadMany(ctx context.Context, keys []string, ttl time.Duration, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error) {
	if !c.live() {
		return loadAll(keys, load)
	}
	return c.local.GetOrLoadMany(ctx, keys, ttl, load)
}

// loadAll loads keys (each once) without the cache.
func loadAll(keys []string, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error) {
	seen := make(map[string]bool, len(keys))
	var uniq []string
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, k)
		}
	}
	if len(uniq) == 0 {
		return map[string][]byte{}, nil
	}
	got, err := load(uniq)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(got))
	for _, k := range uniq {
		if v, ok := got[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// fetchManyScript is fetchScript for many keys at once: KEYS are the
// generation, then each key's value and lease; it returns the lease taken
// ("<generation>:<token>", the same for every key), then per key "v" and
// the value, "l" (the lease is the caller's) or "w" (another holds it).
var fetchManyScript = rueidis.NewLuaScript(`
local g = redis.call('GET', KEYS[1]) or '0'
local lease = g .. ':' .. ARGV[1]
local out = {lease}
for i = 2, #KEYS, 2 do
  local r = nil
  local v = redis.call('GET', KEYS[i])
  if v then
    local p = string.find(v, ':', 1, true)
    if p and string.sub(v, 1, p - 1) == g then r = 'v' .. string.sub(v, p + 1) end
  end
  if not r then
    if redis.call('SET', KEYS[i + 1], lease, 'NX', 'PX', ARGV[2]) then r = 'l' else r = 'w' end
  end
  out[#out + 1] = r
end
return out`)

// fillManyScript is fillScript for many keys: KEYS are the generation,
// then each key's value and lease; ARGV the lease, the ttl and each key's
// value. A key whose lease is no longer the filler's (a Delete since) or
// whose generation passed is not stored.
var fillManyScript = rueidis.NewLuaScript(`
local g = redis.call('GET', KEYS[1]) or '0'
local current = string.sub(ARGV[1], 1, #g + 1) == g .. ':'
for i = 2, #KEYS, 2 do
  if redis.call('GET', KEYS[i + 1]) == ARGV[1] then
    redis.call('DEL', KEYS[i + 1])
    if current then redis.call('SET', KEYS[i], g .. ':' .. ARGV[2 + i / 2], 'PX', ARGV[2]) end
  end
end
return 1`)

// releaseManyScript is releaseScript for many lease keys.
var releaseManyScript = rueidis.NewLuaScript(`
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return 1`)

// GetOrLoadMany is Memory.GetOrLoadMany on Redis: the keys present are
// read as Get reads them, and one script takes the fill lease of every
// key missed (in one round trip). One call of load reads them all; each
// value is stored if its lease is still the caller's (a Delete cancels
// it, as for GetOrLoad). A key whose lease another node holds is loaded
// too, in the same call, and not stored: waiting for the other node would
// cost more than the key's share of the statement. When the cache is not
// usable, load runs for every key missed.
func (r *Redis) GetOrLoadMany(ctx context.Context, keys []string, ttl time.Duration, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error) {
	out, missing := getMany(ctx, r.Get, keys)
	if len(missing) == 0 {
		return out, nil
	}
	c := r.cli()
	if c == nil {
		return r.loadUnleased(out, missing, "bypass", load)
	}
	fkeys := make([]string, 0, 1+2*len(missing))
	fkeys = append(fkeys, r.genKey())
	for _, k := range missing {
		fkeys = append(fkeys, r.valKey(k), r.leaseKey(k))
	}
	var got []string
	err := r.call(ctx, "fetch", r.o.Timeout, func(ctx context.Context) (err error) {
		got, err = scriptStrings(ctx, c, fetchManyScript, fkeys, []string{randomToken(), ms(r.o.FillLease)})
		return err
	})
	if err != nil || len(got) != 1+len(missing) {
		return r.loadUnleased(out, missing, "error", load)
	}
	lease := got[0]
	var toLoad, leased []string
	for i, k := range missing {
		switch s := got[1+i]; {
		case strings.HasPrefix(s, "v"):
			r.m.lookups.WithLabelValues("redis", kindOf(k), "hit").Inc()
			out[k] = []byte(s[1:])
		case s == "l":
			r.m.loads.WithLabelValues(kindOf(k), "lease").Inc()
			leased = append(leased, k)
			toLoad = append(toLoad, k)
		default:
			r.m.loads.WithLabelValues(kindOf(k), "busy").Inc()
			toLoad = append(toLoad, k)
		}
	}
	if len(toLoad) == 0 {
		return out, nil
	}
	vals, err := load(toLoad)
	// Store what was loaded under a lease still held; give up the others
	// (a key not found, or all of them when the load failed), so that
	// other nodes need not wait for the leases to expire.
	var fill, release []string
	fillArgs := []string{lease, ms(ttl)}
	fill = append(fill, r.genKey())
	for _, k := range leased {
		if v, ok := vals[k]; ok && err == nil {
			fill = append(fill, r.valKey(k), r.leaseKey(k))
			fillArgs = append(fillArgs, string(v))
		} else {
			release = append(release, r.leaseKey(k))
		}
	}
	if len(fill) > 1 {
		r.call(context.WithoutCancel(ctx), "fill", r.writeWait(), func(ctx context.Context) error {
			return fillManyScript.Exec(ctx, c, fill, fillArgs).Error()
		})
	}
	if len(release) > 0 {
		r.call(context.WithoutCancel(ctx), "release", r.writeWait(), func(ctx context.Context) error {
			return releaseManyScript.Exec(ctx, c, release, []string{lease}).Error()
		})
	}
	if err != nil {
		return nil, err
	}
	for _, k := range toLoad {
		if v, ok := vals[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// loadUnleased loads missing into out without storing anything (the
// cache is not usable, or did not answer), counting each key's load as
// how.
func (r *Redis) loadUnleased(out map[string][]byte, missing []string, how string, load func(missing []string) (map[string][]byte, error)) (map[string][]byte, error) {
	for _, k := range missing {
		r.m.loads.WithLabelValues(kindOf(k), how).Inc()
	}
	vals, err := load(missing)
	if err != nil {
		return nil, err
	}
	for _, k := range missing {
		if v, ok := vals[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}
