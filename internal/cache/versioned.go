package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Versioned values: a value built from data that many writes change (a
// list page) is kept in Redis for every node together with the versions
// of what it was built from, and read back only while those versions are
// still current. A version key holds a random token; every write that
// changes what the key stands for deletes it (Delete, with the write's
// other keys), and the next reader fills it with a new token under the
// fill lease (GetOrLoad). So a value stored with the tokens it read is
// current exactly while each token is: a write acknowledged before a read
// began has deleted one of them (the fence makes that read see it), and
// no token comes back.
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
	versionKeys := strings.Fields(keys)
	versions := make([]string, len(versionKeys))
	for i, vk := range versionKeys {
		v, ok := r.get(ctx, vk)
		if !ok {
			r.m.versioned.WithLabelValues(kind, "changed").Inc()
			return nil, false
		}
		versions[i] = string(v)
	}
	if versionDigest(versions) != digest {
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
// versionKeys (a missing one is filled with a new token), if keep still
// says yes once they are read.
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
	versions := make([]string, len(versionKeys))
	for i, vk := range versionKeys {
		v, err := r.GetOrLoad(ctx, vk, ttl, func() ([]byte, error) { return []byte(randomToken()), nil })
		if err != nil {
			return
		}
		versions[i] = string(v)
	}
	if !keep() {
		return
	}
	stored := versionDigest(versions) + "\n" + strings.Join(versionKeys, " ") + "\n" + string(value)
	r.Set(ctx, key, []byte(stored), ttl)
}

func versionDigest(versions []string) string {
	h := sha256.Sum256([]byte(strings.Join(versions, "\n")))
	return hex.EncodeToString(h[:16])
}
