package cache

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// Lock takes the lock name for ttl, shared by every node, unless another
// holder has it (held). It implements idempotency.Locker: a request takes
// its idempotency key's lock before claiming the key in the database, so
// concurrent repeats are turned away without a database write. An error
// means the lock could not be asked for (Redis not usable or not
// answering): the caller goes on without it, to the database's claim,
// which stays the authority either way.
func (r *Redis) Lock(ctx context.Context, name string, ttl time.Duration) (unlock func(), held bool, err error) {
	c := r.cli()
	if c == nil {
		return nil, false, errUnusable
	}
	key, token := r.o.Prefix+"k:"+name, randomToken()
	var taken bool
	err = r.call(ctx, "lock", r.writeWait(), func(ctx context.Context) error {
		err := c.Do(ctx, c.B().Set().Key(key).Value(token).Nx().Px(max(ttl, time.Millisecond)).Build()).Error()
		if rueidis.IsRedisNil(err) {
			return nil // held by another
		}
		taken = err == nil
		return err
	})
	if err != nil {
		return nil, false, err
	}
	if !taken {
		return nil, true, nil
	}
	return func() {
		// Only our own: after ttl the lock may belong to someone else.
		r.call(context.WithoutCancel(ctx), "unlock", r.writeWait(), func(ctx context.Context) error {
			return releaseScript.Exec(ctx, c, []string{key}, []string{token}).Error()
		})
	}, false, nil
}
