package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/disgoorg/snowflake/v2"
	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// roundRecord is one chaos round's outcome, for the table.
type roundRecord struct {
	n                                  int
	fault, note                        string
	heal                               time.Duration
	identifies, resumes, failedResumes int
	duplicates                         int
	events, lostTail                   int
	allowDuplicates                    bool // a zombie's frozen connection may overlap its successor's (invariant 1's window)
	expectFatal                        int  // fatal closes the round caused (4011 on a grown shard's re-IDENTIFY)
	commands                           cmdFigures
	cache                              string // the cache against the fake's truth after the round healed
}

// chaosFault injects a fault, holds it, and heals it; it returns when the
// fault has healed (not when the fleet has).
type chaosFault struct {
	name string
	run  func(c *chaosWorld, rng *rand.Rand, r *roundRecord)
}

// Worker counts the membership faults keep between.
const (
	minWorkers = 2
	maxWorkers = 4
)

// chaosCloses are the non-fatal close codes the fake may send. After most the
// client RESUMEs; after 4003, 4007 and 4009 (gateway.CloseCodeAction) it
// must start a new session, so what the fake sent the old one after the last
// commit is gone by Discord's rules.
var chaosCloses = []int{4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009}

var chaosFaults = []chaosFault{
	{"kill -9", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		victim := c.busiestWorker()
		c.signalWorker(victim, syscall.SIGKILL)
		_ = c.workers[victim].wait(c.t, 10*time.Second)
		c.forget(victim)
		r.note = victim + " killed, replaced by " + c.startChaosWorker()
	}},
	{"SIGSTOP > TTL", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		victim := c.busiestWorker()
		fences := c.selfFences(victim)
		c.signalWorker(victim, syscall.SIGSTOP)
		// Frozen past its lease: the others must take its shards over.
		start := time.Now()
		poll(c.t, "the zombie "+victim+"'s membership to expire", 10*time.Second, func() bool { return !c.isMember(victim) })
		took := time.Since(start) + c.waitHealed("the zombie's shards taken over")
		c.signalWorker(victim, syscall.SIGCONT)
		poll(c.t, "the zombie "+victim+" to notice it lost its leases (self-fence)", 15*time.Second,
			func() bool { return c.selfFences(victim) > fences })
		r.allowDuplicates = true
		r.note = fmt.Sprintf("%s frozen; shards taken over in %v; self-fenced after SIGCONT", victim, took.Round(time.Millisecond))
	}},
	{"SIGTERM", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		victim := c.live[rng.IntN(len(c.live))]
		c.signalWorker(victim, syscall.SIGTERM)
		if err := c.workers[victim].wait(c.t, 15*time.Second); err != nil {
			c.t.Errorf("%s after SIGTERM: %v (want exit 0)", victim, err)
		}
		c.forget(victim)
		r.note = victim + " stopped gracefully, replaced by " + c.startChaosWorker()
	}},
	{"join/leave", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		if len(c.live) < maxWorkers && (len(c.live) <= minWorkers || rng.IntN(2) == 0) {
			r.note = c.startChaosWorker() + " joined"
			return
		}
		victim := c.live[rng.IntN(len(c.live))]
		c.signalWorker(victim, syscall.SIGTERM)
		if err := c.workers[victim].wait(c.t, 15*time.Second); err != nil {
			c.t.Errorf("%s leaving: %v (want exit 0)", victim, err)
		}
		c.forget(victim)
		r.note = victim + " left"
	}},
	{"redis restart (data lost)", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		c.archiveStream() // the stream goes with the data: keep what was committed
		c.redis.Restart(c.t)
		c.setLoad(c.load)
		r.note = "no persistence; grace " + chaosDataLossGrace.String()
	}},
	{"redis flushall after IDENTIFYs", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		r.note = c.flushAfterIdentifies()
	}},
	{"redis latency", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		d := time.Duration(20+rng.IntN(130)) * time.Millisecond
		c.proxy.SetLatency(d)
		time.Sleep(2 * time.Second) // the fault's duration
		c.proxy.Heal()
		r.note = fmt.Sprintf("%v per chunk for 2s", d)
	}},
	{"redis black hole < deadline", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		d := chaosRenewDeadline / 2
		c.proxy.Blackhole()
		time.Sleep(d) // the fault's duration
		c.proxy.Heal()
		r.note = fmt.Sprintf("%v (renew deadline %v)", d, chaosRenewDeadline)
	}},
	{"redis black hole deadline..TTL", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		d := (chaosRenewDeadline + leaseTTL) / 2
		r.note = fmt.Sprintf("%v (renew deadline %v, TTL %v): ", d, chaosRenewDeadline, leaseTTL) + c.blackhole(d)
	}},
	{"redis black hole > TTL", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		d := 2 * leaseTTL
		r.note = fmt.Sprintf("%v (TTL %v): ", d, leaseTTL) + c.blackhole(d)
	}},
	{"kill -9 in a black hole", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		victim := c.live[rng.IntN(len(c.live))]
		c.proxy.Blackhole()
		time.Sleep(leaseTTL / 2) // the fault's duration, part 1
		c.signalWorker(victim, syscall.SIGKILL)
		_ = c.workers[victim].wait(c.t, 10*time.Second)
		c.forget(victim)
		time.Sleep(leaseTTL) // part 2: every survivor passes its renew deadline too
		c.proxy.Heal()
		r.note = fmt.Sprintf("%s killed while Redis was cut off for %v; replaced by %s", victim, 3*leaseTTL/2,
			c.startChaosWorker())
	}},
	{"redis reset", func(c *chaosWorld, _ *rand.Rand, r *roundRecord) {
		n := c.proxy.Reset()
		r.note = fmt.Sprintf("%d connections reset", n)
	}},
	{"op 7", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		r.note = c.discordChaos("/_fake/reconnect", randomShard(c, rng))
	}},
	{"op 9 true", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		r.note = c.discordChaos("/_fake/invalidate?resumable=true", randomShard(c, rng))
	}},
	{"op 9 false", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		shard := randomShard(c, rng)
		for _, s := range c.liveSessions(shard) {
			c.mayLoseTail[s] = "op 9 false"
		}
		r.note = c.discordChaos("/_fake/invalidate?resumable=false", shard)
	}},
	{"close code", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		code := chaosCloses[rng.IntN(len(chaosCloses))]
		shard := randomShard(c, rng)
		action := gateway.CloseCodeAction(code)
		if action == gateway.ActionReidentify {
			for _, s := range c.liveSessions(shard) {
				c.mayLoseTail[s] = fmt.Sprintf("closed %d", code)
			}
		}
		r.note = fmt.Sprintf("code %d (%s), ", code, action) +
			c.discordChaos(fmt.Sprintf("/_fake/close?code=%d&reason=chaos", code), shard)
	}},
	{"guild left while down", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		// op 9 false ends the shard's session; the bot leaves one of its
		// guilds before the next session is READY (a guild-leave that found
		// the new session live would reach it as GUILD_DELETE: the note says
		// which), so the cache learns it from the READY reconciliation.
		live := c.fake.sessions(c.t)
		live = slices.DeleteFunc(live, func(s gatewaytest.SessionInfo) bool { return !s.Connected || s.Ended })
		if len(live) == 0 {
			r.note = "skipped: no live session"
			return
		}
		s := live[rng.IntN(len(live))]
		g, ok := c.guildOn(s.ShardID, s.ShardCount)
		if !ok {
			r.note = fmt.Sprintf("skipped: shard %d/%d has no guild left", s.ShardID, s.ShardCount)
			return
		}
		c.mayLoseTail[s.ID] = "op 9 false"
		hit := c.controlHit(fmt.Sprintf("/_fake/invalidate?resumable=false&shard=%d", s.ShardID))
		c.fake.change(c.t, gatewaytest.GuildLeave, gatewaytest.Change{Guild: g})
		r.note = fmt.Sprintf("shard %d/%d (%d connections) invalidated, guild %s left; GUILD_DELETE sent to %d sessions",
			s.ShardID, s.ShardCount, hit, g, c.guildDeletes(g))
	}},
	{"tcp drop", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		r.note = c.discordChaos("/_fake/drop", randomShard(c, rng))
	}},
	{"4011 reshard", func(c *chaosWorld, rng *rand.Rand, r *roundRecord) {
		keys := c.layoutKeys()
		if len(keys) >= 4*c.shards {
			r.note = "skipped: layout already split enough"
			return
		}
		k := keys[rng.IntN(len(keys))]
		// As on Discord: the bot joins guilds of the shard (its session gets
		// GUILD_CREATEs and goes on), and the shard's next IDENTIFY is over the
		// cap. op 9 false forces that IDENTIFY; the fake's own rule closes it
		// 4011. The halves of the split are under the cap.
		on := c.growShard(k, chaosMaxGuildsPerShard+1)
		for _, s := range c.liveSessions(k.ID) {
			c.mayLoseTail[s] = "op 9 false, then 4011"
		}
		fatal := c.fake.stats(c.t).FatalCloses
		sent := time.Now()
		hit := c.controlHit(fmt.Sprintf("/_fake/invalidate?resumable=false&shard=%d", k.ID))
		r.expectFatal = hit
		at := sent
		if hit > 0 {
			poll(c.t, fmt.Sprintf("shard %d/%d's IDENTIFY to be closed 4011", k.ID, k.Count), 20*time.Second,
				func() bool { return c.fake.stats(c.t).FatalCloses >= fatal+hit })
			at = c.last4011(sent)
		}
		c.splitKeys[lease.ShardKey{ID: k.ID, Count: k.Count}] = at
		r.note = fmt.Sprintf("shard %d/%d grown to %d guilds (cap %d), op 9 false (%d connections), re-IDENTIFY closed 4011 after %v",
			k.ID, k.Count, on, chaosMaxGuildsPerShard, hit, at.Sub(sent).Round(time.Millisecond))
	}},
}

// chaosMaxGuildsPerShard is the fake's 4011 cap in the chaos world. startFake
// gives the bot 8 guilds per shard of the initial count, so no shard is over
// it until a "4011 reshard" round grows one to the cap + 1; the halves of a
// split then hold about half of that, under it.
const chaosMaxGuildsPerShard = 12

// growShard has the bot join guilds of shard k until it holds want, and
// returns how many it holds.
func (c *chaosWorld) growShard(k lease.ShardKey, want int) int {
	c.t.Helper()
	var ids []snowflake.ID
	c.fake.get(c.t, "/_fake/guilds", &ids)
	on := 0
	for _, g := range ids {
		if int((uint64(g)>>22)%uint64(k.Count)) == k.ID {
			on++
		}
	}
	if on >= want {
		return on
	}
	path := fmt.Sprintf("/_fake/add-guilds?shard=%d&count=%d&n=%d", k.ID, k.Count, want-on)
	resp, err := http.Post(c.fake.url+path, "application/json", nil)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct {
		On int `json:"guilds_on_shard"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.On != want {
		c.t.Fatalf("POST %s: %s, %d guilds on the shard (want %d)", path, resp.Status, body.On, want)
	}
	return body.On
}

// last4011 is the time of the fake's last 4011 close after since.
func (c *chaosWorld) last4011(since time.Time) time.Time {
	at := since
	for _, cl := range c.fake.closes(c.t) {
		if cl.Code == gateway.CloseShardingRequired && !cl.FromClient && cl.Time.After(at) {
			at = cl.Time
		}
	}
	return at
}

// blackhole cuts every worker off Redis for d (> the renew deadline), then
// heals, and checks that every worker self-fenced meanwhile: stopped its
// shards before anyone else could claim them.
func (c *chaosWorld) blackhole(d time.Duration) string {
	c.t.Helper()
	fences := map[string]int{}
	for _, id := range c.live {
		fences[id] = c.selfFences(id)
	}
	c.proxy.Blackhole()
	time.Sleep(d) // the fault's duration
	c.proxy.Heal()
	for _, id := range c.live {
		poll(c.t, "worker "+id+" to report its self-fence", 10*time.Second, func() bool { return c.selfFences(id) > fences[id] })
	}
	return fmt.Sprintf("all %d workers self-fenced", len(c.live))
}

// flushAfterIdentifies invalidates every session (op 9 false), so every
// shard IDENTIFYs again, and wipes Redis just after the first of those
// IDENTIFYs: the fleet must then neither IDENTIFY a bucket faster than the
// window (the fake counts violations) nor lose or duplicate a committed event.
// The stream is read and wiped in one MULTI, so the archive holds exactly what
// was committed.
func (c *chaosWorld) flushAfterIdentifies() string {
	c.t.Helper()
	c.waitCommitted()
	for _, s := range c.liveSessions(-1) {
		c.mayLoseTail[s] = "op 9 false, then FLUSHALL"
	}
	before := len(c.fake.identifies(c.t))
	hit := c.controlHit("/_fake/invalidate?resumable=false&shard=-1")
	poll(c.t, "the first re-IDENTIFY", 10*time.Second, func() bool { return len(c.fake.identifies(c.t)) > before })
	ctx := context.Background()
	var xr *redis.XMessageSliceCmd
	if _, err := c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		xr = p.XRange(ctx, prefix+"events", "-", "+")
		p.FlushAll(ctx)
		return nil
	}); err != nil {
		c.t.Fatalf("read and wipe redis: %v", err)
	}
	for _, m := range xr.Val() {
		seq, _ := strconv.Atoi(fmt.Sprint(m.Values["seq"]))
		sess := fmt.Sprint(m.Values["session"])
		c.archive[sess] = append(c.archive[sess], seq)
	}
	c.setLoad(c.load)
	return fmt.Sprintf("%d sessions invalidated; FLUSHALL after %d of their IDENTIFYs",
		hit, len(c.fake.identifies(c.t))-before)
}

// randomShard is one shard ID of the layout, or -1 (all) one time in four.
func randomShard(c *chaosWorld, rng *rand.Rand) int {
	if rng.IntN(4) == 0 {
		return -1
	}
	keys := c.layoutKeys()
	if len(keys) == 0 {
		return -1
	}
	return keys[rng.IntN(len(keys))].ID
}

// discordChaos posts a fake-Discord control aimed at shard.
func (c *chaosWorld) discordChaos(path string, shard int) string {
	sep := "?"
	for _, ch := range path {
		if ch == '?' {
			sep = "&"
		}
	}
	hit := c.controlHit(fmt.Sprintf("%s%sshard=%d", path, sep, shard))
	if shard < 0 {
		return fmt.Sprintf("all shards (%d connections)", hit)
	}
	return fmt.Sprintf("shard %d (%d connections)", shard, hit)
}

// controlHit posts a control request and returns its "hit" count.
func (c *chaosWorld) controlHit(path string) int {
	c.t.Helper()
	resp, err := http.Post(c.fake.url+path, "application/json", nil)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var body struct {
		Hit int `json:"hit"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		c.t.Fatalf("POST %s: %s", path, resp.Status)
	}
	return body.Hit
}

// guildOn is a guild of the bot's on shard id of count, keeping at least
// one so that the shard is not left empty.
func (c *chaosWorld) guildOn(id, count int) (snowflake.ID, bool) {
	var on []snowflake.ID
	for _, g := range fakeGet[[]snowflake.ID](c.t, c.fake, "/_fake/guilds") {
		if int((uint64(g)>>22)%uint64(count)) == id {
			on = append(on, g)
		}
	}
	if len(on) < 2 {
		return 0, false
	}
	return on[len(on)-1], true
}

// guildDeletes counts the sessions the fake sent a GUILD_DELETE of g.
func (c *chaosWorld) guildDeletes(g snowflake.ID) int {
	n := 0
	for _, s := range c.fake.sessions(c.t) {
		var evs []struct {
			gatewaytest.SentEvent
			D json.RawMessage `json:"d"`
		}
		c.fake.get(c.t, "/_fake/events?data=true&session="+s.ID, &evs)
		for _, e := range evs {
			if e.Type == "GUILD_DELETE" && strings.Contains(string(e.D), `"`+g.String()+`"`) {
				n++
			}
		}
	}
	return n
}
