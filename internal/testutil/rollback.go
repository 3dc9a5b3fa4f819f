package testutil

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// rollbackScript makes Redis look as if it had lost a session's last n
// committed events, as a replica promoted before it received them would: the
// session record goes back n seqs and the stream loses the session's entries
// past it. KEYS: record, stream; ARGV: n. Returns the new record seq, or -1
// when the record has fewer than n+1 seqs.
var rollbackScript = redis.NewScript(`
local rec = redis.call('HMGET', KEYS[1], 'session_id', 'seq')
local y = (tonumber(rec[2]) or 0) - tonumber(ARGV[1])
if not rec[1] or y < 1 then return -1 end
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local sess, seq
  for i = 1, #e[2], 2 do
    if e[2][i] == 'session' then sess = e[2][i + 1] elseif e[2][i] == 'seq' then seq = tonumber(e[2][i + 1]) end
  end
  if sess == rec[1] and seq > y then redis.call('XDEL', KEYS[2], e[1]) end
end
redis.call('HSET', KEYS[1], 'seq', y)
return y
`)

// RollBack rolls the session record at recordKey and its events in streamKey
// back by n seqs, atomically (see rollbackScript). It returns the record's
// seq after the rollback, or -1 if it had too few.
func RollBack(ctx context.Context, c redis.UniversalClient, recordKey, streamKey string, n int) (int, error) {
	return rollbackScript.Run(ctx, c, []string{recordKey, streamKey}, n).Int()
}
