package testutil

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
)

// refuseTooFew is rollbackScript's refusal: the record has fewer than n+1 seqs.
const refuseTooFew = "TOOFEW"

// rollbackScript makes Redis look as if it had lost a session's last n
// committed events, as a replica promoted before it received them would: the
// session record goes back n seqs and the stream loses the session's entries
// past it. Reply: the new record seq, or refuseTooFew.
var rollbackScript = keyspace.NewScript([]string{"record", "stream"}, []string{"n"}, `
local rec = redis.call('HMGET', K_record, 'session_id', 'seq')
local y = (tonumber(rec[2]) or 0) - tonumber(A_n)
if not rec[1] or y < 1 then return refuse('`+refuseTooFew+`', 'seq ' .. (rec[2] or 'none') .. ' minus ' .. A_n) end
for _, e in ipairs(redis.call('XRANGE', K_stream, '-', '+')) do
  local sess, seq
  for i = 1, #e[2], 2 do
    if e[2][i] == 'session' then sess = e[2][i + 1] elseif e[2][i] == 'seq' then seq = tonumber(e[2][i + 1]) end
  end
  if sess == rec[1] and seq > y then redis.call('XDEL', K_stream, e[1]) end
end
redis.call('HSET', K_record, 'seq', y)
return y
`)

// RollBack rolls the session record at recordKey and its events in streamKey
// back by n seqs, atomically (see rollbackScript). It returns the record's
// seq after the rollback, or -1 if it had too few.
func RollBack(ctx context.Context, c redis.UniversalClient, recordKey, streamKey string, n int) (int, error) {
	y, err := rollbackScript.Run(ctx, c, []string{recordKey, streamKey}, n).Int()
	if keyspace.IsRefusal(err, refuseTooFew) {
		return -1, nil
	}
	return y, err
}
