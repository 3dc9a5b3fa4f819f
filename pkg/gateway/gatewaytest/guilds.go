package gatewaytest

import (
	"fmt"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// maxGuilds bounds the guilds the fake holds, initial and added (as Config.Guilds).
const maxGuilds = 1 << 22

// AddGuilds acts out the bot joining n new guilds that all route to shard
// shardID of shardCount ((guild_id >> 22) % shardCount == shardID). It
// returns how many guilds that shard holds now.
//
// As on Discord, every live session whose shard holds a new guild (under its
// own count) gets a GUILD_CREATE for it, and the guilds count from then on:
// in READY and GUILD_CREATE of later IDENTIFYs, in GuildIDs, and in the 4011
// rule, which is checked at IDENTIFY only. So a shard grown past
// MaxGuildsPerShard keeps its session, and its next IDENTIFY (after op 9
// false, say: InvalidateSession(shardID, false)) closes 4011. The new guilds'
// timestamps follow each other in steps of shardCount, so they spread evenly
// over the halves when the shard is split to 2*shardCount. The steady load
// (EventsPerSecond) stays on the initial guilds.
//
// An invalid shard (count below 1, ID outside [0, count)), a negative n, or
// more than 4194304 guilds in all is an error and adds nothing.
func (s *Server) AddGuilds(shardID, shardCount, n int) (int, error) {
	if shardCount < 1 || shardID < 0 || shardID >= shardCount {
		return 0, fmt.Errorf("gatewaytest: AddGuilds: invalid shard %d of %d", shardID, shardCount)
	}
	s.mu.Lock()
	if n < 0 || len(s.guilds)+len(s.added)+n > maxGuilds {
		s.mu.Unlock()
		return 0, fmt.Errorf("gatewaytest: AddGuilds: n %d: want 0..%d", n, maxGuilds-len(s.guilds)-len(s.added))
	}
	if s.nextGuildMs == 0 {
		s.nextGuildMs = uint64(guildEpochMs + len(s.guilds)) // after the initial guilds
	}
	now := time.Now()
	var slow []*conn
	count := uint64(shardCount)
	for range n {
		ms := s.nextGuildMs + (uint64(shardID)+count-s.nextGuildMs%count)%count // first ms >= next on the shard
		s.nextGuildMs = ms + 1
		i := len(s.guilds) + len(s.added)
		g := snowflake.ID(ms<<22 | uint64(i%4096))
		s.added = append(s.added, g)
		_, slow = s.route(now, typGuildCreate, g, s.guildCreateFor(i, g), slow)
	}
	on := s.guildsOnShard(shardID, shardCount)
	s.mu.Unlock()
	s.waitSlow(slow)
	s.log.Info("guilds added", "shard_id", shardID, "shard_count", shardCount, "added", n, "guilds_on_shard", on)
	return on, nil
}
