package lease

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// LoadLayout reads the fleet layout; ErrNoLayout if there is none yet.
func LoadLayout(ctx context.Context, client redis.UniversalClient, keys Keys) (Layout, error) {
	vals, err := client.HMGet(ctx, keys.Layout(), "version", "data").Result()
	if err != nil { // HMGET answers nil fields, never redis.Nil
		return Layout{}, fmt.Errorf("load layout: %w", err)
	}
	ver, _ := vals[0].(string)
	data, _ := vals[1].(string)
	if ver == "" || data == "" {
		return Layout{}, ErrNoLayout
	}
	v, err := strconv.ParseInt(ver, 10, 64)
	if err != nil {
		return Layout{}, fmt.Errorf("load layout: %w: version %q", ErrCorrupt, ver)
	}
	return decodeLayout(v, data)
}

// LoadLayout reads the fleet layout; ErrNoLayout if there is none yet.
func (s *Session) LoadLayout(ctx context.Context) (Layout, error) {
	l, err := LoadLayout(ctx, s.client, s.keys)
	if err == nil {
		s.rememberLayout(l)
	}
	return l, err
}

func (s *Session) rememberLayout(l Layout) {
	s.mu.Lock()
	if l.Version >= s.layout.Version {
		s.layout = l
	}
	s.mu.Unlock()
}

// SetLayoutIfAbsent stores a layout of count unsplit shards unless the fleet
// has one, and returns the fleet's layout either way. Every worker may call it
// at start with the count it got from Discord (GET /gateway/bot).
func (s *Session) SetLayoutIfAbsent(ctx context.Context, count int) (Layout, error) {
	l := Layout{Count: count}
	if err := l.validate(); err != nil {
		return Layout{}, fmt.Errorf("set layout: %w", err)
	}
	res, err := layoutInitScript.Run(ctx, s.client, []string{s.keys.Layout()}, encodeLayout(l)).StringSlice()
	if err != nil {
		return Layout{}, fmt.Errorf("set layout: %w", err)
	}
	if len(res) != 2 {
		return Layout{}, fmt.Errorf("set layout: %w: reply %v", ErrCorrupt, res)
	}
	v, err := strconv.ParseInt(res[0], 10, 64)
	if err != nil {
		return Layout{}, fmt.Errorf("set layout: %w: version %q", ErrCorrupt, res[0])
	}
	out, err := decodeLayout(v, res[1])
	if err != nil {
		return Layout{}, fmt.Errorf("set layout: %w", err)
	}
	s.rememberLayout(out)
	return out, nil
}

// SplitShard records that key was split factor ways (after close 4011 with
// auto-scaling): shard s of count c becomes shards s + j*c of count c*factor.
// It is idempotent: splitting a key already split the same way returns the
// current layout. Every worker sees the new version on its next renew, and Run
// moves leases to the new keys (the old key's lease is revoked).
func (s *Session) SplitShard(ctx context.Context, key ShardKey, factor int) (Layout, error) {
	for attempt := 0; attempt < 16; attempt++ {
		cur, err := s.LoadLayout(ctx)
		if err != nil {
			return Layout{}, fmt.Errorf("split %v: %w", key, err)
		}
		next, err := cur.withSplit(key, factor)
		if err != nil {
			return Layout{}, fmt.Errorf("split %v: %w", key, err)
		}
		if len(next.Splits) == len(cur.Splits) {
			return cur, nil // already split: idempotent
		}
		ok, err := layoutCASScript.Run(ctx, s.client, []string{s.keys.Layout()},
			cur.Version, encodeLayout(next)).Int64()
		if err != nil {
			return Layout{}, fmt.Errorf("split %v: %w", key, err)
		}
		if ok == 1 {
			next.Version = cur.Version + 1
			s.rememberLayout(next)
			return next, nil
		}
		// Version conflict: another worker changed the layout; read it again.
	}
	return Layout{}, fmt.Errorf("split %v: layout kept changing under concurrent writers", key)
}
