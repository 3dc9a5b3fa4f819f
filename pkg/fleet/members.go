package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// MembersChunk is one GUILD_MEMBERS_CHUNK as committed to the event stream.
type MembersChunk struct {
	Shard, Count int
	ChunkIndex   int             `json:"chunk_index"`
	ChunkCount   int             `json:"chunk_count"`
	Nonce        string          `json:"nonce"`
	Data         json.RawMessage `json:"-"` // the whole d
}

// RequestMembers sends op 8 to the guild's shard and returns its
// GUILD_MEMBERS_CHUNKs, read from the fleet's event stream by the request's
// nonce (one is made up when req has none). It returns once every chunk is
// there, or with the command's outcome as an error when it was not sent,
// or when ctx ends (bound it).
func (c *Client) RequestMembers(ctx context.Context, req gateway.RequestGuildMembers) ([]MembersChunk, error) {
	if req.Nonce == "" {
		req.Nonce = newID()[:MaxNonceBytes]
	}
	d, err := json.Marshal(req)
	if err != nil {
		return nil, rejected("request: %v", err)
	}
	stream, err := c.guildStream(ctx, uint64(req.GuildID))
	if err != nil {
		return nil, err
	}
	from, err := c.streamEnd(ctx, stream)
	if err != nil {
		return nil, err
	}
	queued, err := c.Send(ctx, Target{}, Command{Op: gateway.OpRequestGuildMembers, D: d})
	if err != nil {
		return nil, err
	}
	id := queued[0].ID
	var chunks []MembersChunk
	for {
		var more []MembersChunk
		if from, more, err = c.readChunks(ctx, stream, from, req.Nonce); err != nil {
			return chunks, err
		}
		chunks = append(chunks, more...)
		if len(chunks) > 0 && len(chunks) >= chunks[0].ChunkCount {
			return chunks, nil
		}
		o, err := c.Outcome(ctx, id)
		if err == nil && o.State != StateSent {
			return nil, fmt.Errorf("fleet: request members: command %s %s %s", id, o.State, o.Reason)
		}
		if err != nil && !errors.Is(err, ErrNoOutcome) {
			return chunks, err
		}
	}
}

// guildStream is the event stream of the partition of the guild's shard,
// where its GUILD_MEMBERS_CHUNKs are committed.
func (c *Client) guildStream(ctx context.Context, guild uint64) (string, error) {
	shards, err := c.route(ctx, Target{Guild: guild}, 0)
	if err != nil {
		return "", err
	}
	keys, err := c.partitioned(ctx)
	if err != nil {
		return "", err
	}
	return keys.ShardEvents(shards[0]), nil
}

// streamEnd is the ID of the stream's last entry ("0" when empty), so that a
// read from it sees only what is committed later.
func (c *Client) streamEnd(ctx context.Context, stream string) (string, error) {
	last, err := c.redis.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("fleet: read the event stream: %w", err)
	}
	if len(last) == 0 {
		return "0", nil
	}
	return last[0].ID, nil
}

// readChunks waits up to the poll interval for stream entries after from and
// returns the last ID read and the GUILD_MEMBERS_CHUNKs of nonce among them.
func (c *Client) readChunks(ctx context.Context, stream, from, nonce string) (string, []MembersChunk, error) {
	res, err := c.redis.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, from}, Count: 512,
		Block: c.poll}).Result()
	if errors.Is(err, redis.Nil) {
		return from, nil, nil
	}
	if err != nil {
		return from, nil, fmt.Errorf("fleet: read the event stream: %w", err)
	}
	var out []MembersChunk
	for _, s := range res {
		for _, m := range s.Messages {
			from = m.ID
			if m.Values["type"] != "GUILD_MEMBERS_CHUNK" {
				continue
			}
			data, _ := m.Values["data"].(string)
			var ch MembersChunk
			if json.Unmarshal([]byte(data), &ch) != nil || ch.Nonce != nonce {
				continue
			}
			ch.Data = json.RawMessage(data)
			ch.Shard, _ = strconv.Atoi(fmt.Sprint(m.Values["shard"]))
			ch.Count, _ = strconv.Atoi(fmt.Sprint(m.Values["count"]))
			out = append(out, ch)
		}
	}
	return from, out, nil
}
