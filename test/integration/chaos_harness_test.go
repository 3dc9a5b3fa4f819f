package integration

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/internal/faultproxy"
	"github.com/shardfleet/shardfleet/internal/lease"
	"github.com/shardfleet/shardfleet/internal/redistest"
	"github.com/shardfleet/shardfleet/internal/worker"
)

// chaosWorld is the chaos suite's topology: a redis-server the workers reach
// through a fault proxy (the test's own client connects directly), the fake
// Discord with a steady dispatch load, and a changing set of worker
// processes.
type chaosWorld struct {
	*fleet
	proxy    *faultproxy.Proxy
	redisURL string   // the workers' REDIS_URL: the proxy, or a Cluster's nodes
	live     []string // worker IDs running (not killed, not stopped for good)
	nextID   int
	load     float64
	archive  map[string][]int // session -> stream seqs saved before a Redis data loss

	// Sessions whose tail may legitimately be missing from the stream: Discord
	// invalidated them (op 9 false, a RESUME refused) or a fatal close ended
	// them, so no one can RESUME them to fetch what was sent after the last
	// committed seq.
	mayLoseTail map[string]string // session -> why
	splitKeys   map[lease.ShardKey]time.Time
	lastStream  streamReport // the previous round's, for per-round figures
	mutations   float64      // the fake's world changes per second (cache mutations), paused for each check

	// partitions reads a partitioned fleet's keys (on Redis Cluster: every
	// master); nil for a fleet of one partition, which client reads.
	partitions redis.UniversalClient
}

// Compressed chaos timings (fleet_test.go's, plus the derived ones).
const (
	chaosRenewDeadline = leaseTTL * 2 / 3                    // cmd/worker's default
	chaosDataLossGrace = leaseTTL + chaosRenewDeadline       // cmd/worker sets it so
	chaosHealBound     = 20*time.Second + chaosDataLossGrace // invariant 4's stated bound
	chaosSettle        = 3 * renewInterval                   // how long "healed" must hold
	// chaosResumeTimeout: a dropped session the fleet has not resumed by then
	// ends at the fake (Discord's is minutes). It bounds how long an abandoned
	// session keeps collecting dispatches, and makes a slow failover a loss.
	chaosResumeTimeout = 10 * time.Second
)

// newChaosWorld starts the chaos topology; extra are more fakediscord flags
// (later ones win).
func newChaosWorld(t *testing.T, shards int, load float64, extra ...string) *chaosWorld {
	t.Helper()
	needBinaries(t)
	r := redistest.Start(t)
	proxy, err := faultproxy.New(r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	fk := startFake(t, shards, load, append([]string{
		"-resume-timeout", chaosResumeTimeout.String(), "-max-guilds-per-shard", strconv.Itoa(chaosMaxGuildsPerShard)},
		append(cacheWorldFlags, extra...)...)...)
	return &chaosWorld{
		fleet: &fleet{t: t, redis: r, client: r.Client(t), fake: fk, shards: shards, token: "itest-token",
			workers: map[string]*proc{}},
		proxy: proxy, redisURL: "redis://" + proxy.Addr(), load: load, archive: map[string][]int{},
		mayLoseTail: map[string]string{}, splitKeys: map[lease.ShardKey]time.Time{}, mutations: chaosMutations,
	}
}

// chaosMutations are the world changes per second the fake makes during
// every round (each sends the dispatches Discord would: cache mutations).
const chaosMutations = 10

// setMutations sets the fake's steady world changes.
func (c *chaosWorld) setMutations(rate float64) {
	c.fake.post(c.t, "/_fake/world/mutations-per-second?rate="+fmt.Sprint(rate))
}

// chaosCacheKinds are the kinds a round compares: every kind the workers
// keep but messages. A message sent on a session Discord then invalidated
// (op 9 false, a fatal close) is lost with the session's tail, and no later
// event brings it back (GUILD_CREATE carries no messages), so the truth may
// keep messages no cache can have; TestCacheEqualsTheWorld compares them.
var chaosCacheKinds = mustKinds(cache.KindNames()) &^ cache.Messages

func mustKinds(s string) cache.Kinds {
	k, err := cache.ParseKinds(s)
	if err != nil {
		panic(err)
	}
	return k
}

// checkCache is the round's cache check, once the fleet healed and
// committed what the fake sent: `worker cache dump` must equal the fake's
// truth for every guild, within chaosCacheBound. It returns the figure for
// the table, with how long the check took.
func (c *chaosWorld) checkCache(where string) string {
	c.t.Helper()
	start := time.Now()
	n, diffs := c.matchCache(chaosCacheKinds, chaosCacheBound)
	took := time.Since(start).Round(10 * time.Millisecond)
	if len(diffs) > 0 {
		c.t.Errorf("cache: %s: the cache differs from /_fake/state in %d places:\n%s", where, len(diffs),
			strings.Join(diffs[:min(len(diffs), 20)], "\n"))
		return fmt.Sprintf("%d guilds, %d differ", n, len(diffs))
	}
	return fmt.Sprintf("%d equal (%v)", n, took)
}

// waitRebuilt is the wait of a round in which Redis lost its data, the
// cache with it: it polls, within chaosHealBound, until every shard's
// connected session is one whose READY the stream holds since the loss (the
// workers renewed the sessions whose records Redis lost: that session's
// GUILD_CREATEs rebuilt the cache). The sessions it replaced (the archive's,
// no longer connected) lose their tails by Discord's semantics: nobody
// RESUMEs them. It returns how many shards the fleet renewed to rebuild.
func (c *chaosWorld) waitRebuilt(what string) int {
	c.t.Helper()
	poll(c.t, what+": every shard's session renewed since the data loss (cache rebuilt)", chaosHealBound, func() bool {
		keys := c.layoutKeys()
		if len(keys) == 0 {
			return false
		}
		ready := c.readyInStream()
		for _, k := range keys {
			live := 0
			for _, s := range c.fake.sessions(c.t) {
				if s.Connected && !s.Ended && s.ShardID == k.ID && s.ShardCount == k.Count && ready[s.ID] {
					live++
				}
			}
			if live != 1 {
				return false
			}
		}
		return true
	})
	for _, s := range c.fake.sessions(c.t) {
		if (!s.Connected || s.Ended) && len(c.archive[s.ID]) > 0 && c.mayLoseTail[s.ID] == "" {
			c.mayLoseTail[s.ID] = "renewed after a Redis data loss (cache rebuild)"
		}
	}
	n := 0
	for _, p := range c.workers {
		n += linesWith(p, "reopening the shard with a new session to rebuild the cache")
	}
	return n
}

// readyInStream are the sessions whose READY (seq 1) Redis' stream holds.
func (c *chaosWorld) readyInStream() map[string]bool {
	c.t.Helper()
	msgs, err := c.client.XRange(context.Background(), prefix+"events", "-", "+").Result()
	if err != nil {
		c.t.Fatalf("read the stream: %v", err)
	}
	out := map[string]bool{}
	for _, m := range msgs {
		if fmt.Sprint(m.Values["seq"]) == "1" {
			out[fmt.Sprint(m.Values["session"])] = true
		}
	}
	return out
}

// chaosCacheBound bounds how long a healed, committed fleet's cache may take
// to equal the truth: a world change in flight when the mutations paused
// is committed within it.
const chaosCacheBound = 10 * time.Second

// startChaosWorker starts a worker that reaches Redis at redisURL,
// with startWorker's compressed timings and an uncapped stream.
func (c *chaosWorld) startChaosWorker() string {
	c.t.Helper()
	c.nextID++
	id := "w" + strconv.Itoa(c.nextID)
	env := []string{
		"DISCORD_TOKEN=" + c.token, "REDIS_URL=" + c.redisURL, "KEY_PREFIX=" + prefix, "WORKER_ID=" + id,
		"SHARD_COUNT=" + strconv.Itoa(c.shards), "MAX_CONCURRENCY=1",
		"DISCORD_API_URL=" + c.fake.apiURL, "GATEWAY_URL=" + c.fake.gatewayURL,
		"LEASE_TTL=" + leaseTTL.String(), "LEASE_RENEW_INTERVAL=" + renewInterval.String(),
		"IDENTIFY_WINDOW=" + identifyWindow.String(), "IDENTIFY_MARGIN=20ms", "EVENT_STREAM_MAXLEN=0",
		"HTTP_ADDR=" + freeAddr(c.t), "SHUTDOWN_TIMEOUT=5s", "SUMMARY_INTERVAL=0", "LOG_LEVEL=info",
	}
	env = append(env, cacheSettings...)
	c.workers[id] = startProc(c.t, "worker "+id, env, "worker")
	c.live = append(c.live, id)
	return id
}

func (c *chaosWorld) forget(id string) {
	c.live = slices.DeleteFunc(c.live, func(s string) bool { return s == id })
}

// isMember reports whether worker id's membership is alive in Redis.
func (c *chaosWorld) isMember(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := worker.ReadFleet(ctx, c.client, prefix)
	if err != nil {
		return true // unknown: keep polling
	}
	for _, w := range st {
		if w.WorkerID == id && w.LeaseExpiresInMS >= 0 {
			return true
		}
	}
	return false
}

// layoutKeys is the fleet's current shard layout.
func (c *chaosWorld) layoutKeys() []lease.ShardKey {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l, err := lease.LoadLayout(ctx, c.client, lease.NewKeys(prefix))
	if err != nil {
		return nil
	}
	return l.Shards()
}

// allReady reports whether every shard of the layout is READY on exactly one
// live worker (member key not expired) and no live worker reports a shard
// twice. It answers why not, for the timeout message.
func (c *chaosWorld) allReady() (bool, string) {
	keys := c.layoutKeys()
	if len(keys) == 0 {
		return false, "no layout in Redis"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := worker.ReadFleet(ctx, c.client, prefix)
	if err != nil {
		return false, err.Error()
	}
	ready := map[lease.ShardKey]int{}
	for _, w := range st {
		if w.LeaseExpiresInMS < 0 {
			continue
		}
		for _, s := range w.Shards {
			if s.Status == "ready" {
				ready[lease.ShardKey{ID: s.ID, Count: s.Count}]++
			}
		}
	}
	connected := map[lease.ShardKey]int{}
	for _, s := range c.fake.sessions(c.t) {
		if s.Connected && !s.Ended {
			connected[lease.ShardKey{ID: s.ShardID, Count: s.ShardCount}]++
		}
	}
	for _, k := range keys {
		if ready[k] != 1 {
			return false, fmt.Sprintf("shard %d/%d READY on %d workers", k.ID, k.Count, ready[k])
		}
		if connected[k] != 1 {
			return false, fmt.Sprintf("shard %d/%d has %d connected sessions at the fake", k.ID, k.Count, connected[k])
		}
	}
	return true, ""
}

// waitHealed polls until allReady has held for chaosSettle (longer than the
// workers' status interval, so a stale status cannot pass for a healed
// fleet), within chaosHealBound; it returns the time to the start of that
// streak.
func (c *chaosWorld) waitHealed(what string) time.Duration {
	c.t.Helper()
	start := time.Now()
	var streak time.Time
	for {
		ok, why := c.allReady()
		switch {
		case !ok:
			streak = time.Time{}
		case streak.IsZero():
			streak = time.Now()
		case time.Since(streak) >= chaosSettle:
			return streak.Sub(start)
		}
		if time.Since(start) > chaosHealBound {
			c.t.Fatalf("invariant 4: %s: not every shard READY within %v after the fault healed: %s", what, chaosHealBound, why)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
}

// setLoad sets the fake's steady dispatch rate.
func (c *chaosWorld) setLoad(rate float64) {
	c.fake.post(c.t, "/_fake/events-per-second?rate="+fmt.Sprint(rate))
}

// liveSessions are the fake's sessions with a connection now, by shard.
func (c *chaosWorld) liveSessions(shard int) []string {
	var ids []string
	for _, s := range c.fake.sessions(c.t) {
		if s.Connected && !s.Ended && (shard < 0 || s.ShardID == shard) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// streamSeqs reads the stream (every partition's, for a partitioned fleet):
// session -> seqs, in stream order, plus the archive of streams lost with
// Redis' data.
func (c *chaosWorld) streamSeqs() (map[string][]int, int) {
	c.t.Helper()
	out := map[string][]int{}
	for s, seqs := range c.archive {
		out[s] = append(out[s], seqs...)
	}
	if c.partitions != nil {
		inStreams, n := streamSeqsOf(c.t, c.partitions, storedKeys(c.t, c.partitions, prefix))
		for s, seqs := range inStreams {
			out[s] = append(out[s], seqs...)
		}
		return out, n
	}
	msgs, err := c.client.XRange(context.Background(), prefix+"events", "-", "+").Result()
	if err != nil {
		c.t.Fatalf("read the stream: %v", err)
	}
	for _, m := range msgs {
		seq, _ := strconv.Atoi(fmt.Sprint(m.Values["seq"]))
		sess := fmt.Sprint(m.Values["session"])
		out[sess] = append(out[sess], seq)
	}
	return out, len(msgs)
}

// waitCommitted pauses the load and waits until every connected session's
// last dispatch is committed (its session record in Redis says so, or, after
// a data loss with no dispatch since, the archive does; a partitioned
// fleet's, whose session records live in its partitions, by its last seq in
// the streams). A session between
// owners (handed off, not yet RESUMEd) is waited for too, for up to
// handoffGrace: the fake holds its tail for the RESUME, and a check that
// skipped it would count that tail, committed a moment later, as lost. A
// session nobody resumes within the grace keeps its tail out of the stream,
// and the stream check judges it.
func (c *chaosWorld) waitCommitted() {
	c.t.Helper()
	c.setLoad(0)
	handoffsUntil := time.Now().Add(handoffGrace)
	poll(c.t, "every connected session's dispatches committed", 20*time.Second, func() bool {
		var inStream map[string][]int
		if c.partitions != nil {
			inStream, _ = c.streamSeqs()
		}
		for _, s := range c.fake.sessions(c.t) {
			if s.Ended || (!s.Connected && time.Now().After(handoffsUntil)) {
				continue
			}
			if c.partitions != nil {
				if got := inStream[s.ID]; s.Seq == 0 || (len(got) > 0 && got[len(got)-1] == s.Seq) {
					continue
				}
				return false
			}
			vals, err := c.client.HMGet(context.Background(), fmt.Sprintf("%ssession:%d:%d", prefix, s.ShardCount, s.ShardID),
				"session_id", "seq").Result()
			if err == nil && vals[0] == s.ID && vals[1] == strconv.Itoa(s.Seq) {
				continue
			}
			if a := c.archive[s.ID]; len(a) > 0 && a[len(a)-1] == s.Seq {
				continue
			}
			return false
		}
		return true
	})
}

// handoffGrace bounds how long waitCommitted waits for a session between
// owners: a handoff takes tens of ms, a rebalance after a rejoin a few.
const handoffGrace = 3 * time.Second

// archiveStream pauses the load and saves the stream before Redis loses it;
// the caller resumes the load once Redis is gone, so nothing is committed
// between the copy and the loss.
func (c *chaosWorld) archiveStream() {
	c.t.Helper()
	c.waitCommitted()
	seqs, _ := c.streamSeqs()
	c.archive = seqs
}

// streamReport is invariant 3's outcome.
type streamReport struct {
	checked, lostTail, sessions int
	problems                    []string
}

// checkStream is invariant 3, per session the fake opened:
//   - the stream holds no (session, seq) twice, and only seqs the fake sent
//     on that session;
//   - the stream's seqs of a session are exactly 1..k with no gap, k at most
//     the last seq sent;
//   - k is the last seq sent, unless the session is in mayLoseTail (Discord
//     invalidated it, so what it sent after the last commit is gone by
//     Discord's semantics: no one can RESUME it). Those lost tails are
//     counted, not failed.
//
// The fake keeps only its last ReplayBuffer dispatches per session, so "sent"
// is a suffix of the session: contiguity from 1 in the stream plus k = last
// sent covers the part the fake forgot.
func (c *chaosWorld) checkStream() streamReport {
	c.t.Helper()
	inStream, _ := c.streamSeqs()
	var rep streamReport
	for _, s := range c.fake.sessions(c.t) {
		rep.sessions++
		sent := c.fake.sentSeqs(c.t, s.ID)
		got := inStream[s.ID]
		rep.checked += len(got)
		if p := seqProblem(got, sent, c.mayLoseTail[s.ID] != ""); p != "" {
			rep.problems = append(rep.problems, fmt.Sprintf("shard %d/%d session %s: %s", s.ShardID, s.ShardCount, s.ID, p))
		}
		if len(sent) > 0 && len(got) < sent[len(sent)-1] {
			rep.lostTail += sent[len(sent)-1] - len(got)
		}
		delete(inStream, s.ID)
	}
	for sess, seqs := range inStream {
		rep.problems = append(rep.problems, fmt.Sprintf("stream holds %d events of session %q the fake never opened", len(seqs), sess))
	}
	return rep
}

// seqProblem checks one session's stream seqs against the seqs the fake sent
// (a suffix of 1..last). It returns "" when they agree.
func seqProblem(got, sent []int, mayLoseTail bool) string {
	sorted := slices.Clone(got)
	sort.Ints(sorted)
	for i, seq := range sorted {
		if i > 0 && seq == sorted[i-1] {
			return fmt.Sprintf("seq %d twice in the stream", seq)
		}
		if seq != i+1 {
			return fmt.Sprintf("stream seqs not 1..k: found %d at position %d (gap or foreign seq)", seq, i+1)
		}
	}
	last := 0
	if len(sent) > 0 {
		last = sent[len(sent)-1]
		if sent[0]+len(sent)-1 != last {
			return fmt.Sprintf("the fake's sent seqs are not contiguous: %d..%d with %d events", sent[0], last, len(sent))
		}
	}
	switch k := len(sorted); {
	case k > last:
		return fmt.Sprintf("stream has seqs up to %d, the fake sent up to %d", k, last)
	case k < last && !mayLoseTail:
		return fmt.Sprintf("lost events: stream has 1..%d, the fake sent up to %d", k, last)
	}
	return ""
}

// checkNoLoop is invariant 5 for the fleet's splits: a (shard, count) split
// after a 4011 is never IDENTIFYed again.
func (c *chaosWorld) checkNoLoop() []string {
	var out []string
	for _, rec := range c.fake.identifies(c.t) {
		k := lease.ShardKey{ID: rec.ShardID, Count: rec.ShardCount}
		if at, ok := c.splitKeys[k]; ok && rec.Time.After(at.Add(time.Second)) {
			out = append(out, fmt.Sprintf("shard %d/%d identified at %s, after its 4011 split at %s",
				k.ID, k.Count, rec.Time.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano)))
		}
	}
	return out
}

// failedResumeSessions marks the sessions whose RESUME the fake refused.
func (c *chaosWorld) noteFailedResumes() {
	for _, r := range c.fake.resumes(c.t) {
		if !r.OK && c.mayLoseTail[r.SessionID] == "" {
			c.mayLoseTail[r.SessionID] = "RESUME refused"
		}
	}
}

// signalWorker sends sig to worker id.
func (c *chaosWorld) signalWorker(id string, sig syscall.Signal) { c.workers[id].signal(sig) }

// busiestWorker is the live worker holding the most READY shards.
func (c *chaosWorld) busiestWorker() string {
	owners, _ := c.owners()
	n := map[string]int{}
	for _, w := range owners {
		n[w]++
	}
	best := c.live[0]
	for _, id := range c.live {
		if n[id] > n[best] {
			best = id
		}
	}
	return best
}

// selfFences counts the lines in which worker id reported stopping its
// shards for a lost lease or an ended fleet session (self-fence, expiry).
func (c *chaosWorld) selfFences(id string) int {
	p := c.workers[id]
	return linesWith(p, "lease lost") + linesWith(p, "fleet session ended")
}

func TestRequireBinariesUnderCI(t *testing.T) {
	for _, tc := range []struct {
		ci, require string
		want        bool
	}{
		{"", "", false},
		{"true", "", true},
		{"1", "", true},
		{"false", "", false},
		{"", "1", true},
	} {
		t.Setenv("CI", tc.ci)
		t.Setenv("REDISTEST_REQUIRE", tc.require)
		if got := requireBinaries(); got != tc.want {
			t.Errorf("CI=%q REDISTEST_REQUIRE=%q: requireBinaries() = %v, want %v (a broken build must fail under CI)",
				tc.ci, tc.require, got, tc.want)
		}
	}
}

func TestSeqProblem(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, sent []int
		mayLose   bool
		ok        bool
	}{
		{"exact", []int{1, 2, 3}, []int{1, 2, 3}, false, true},
		{"replayed out of order is fine", []int{1, 3, 2}, []int{1, 2, 3}, false, true},
		{"duplicate", []int{1, 2, 2, 3}, []int{1, 2, 3}, false, false},
		{"gap", []int{1, 3}, []int{1, 2, 3}, false, false},
		{"lost tail", []int{1, 2}, []int{1, 2, 3}, false, false},
		{"lost tail of an invalidated session", []int{1, 2}, []int{1, 2, 3}, true, true},
		{"more than sent", []int{1, 2, 3, 4}, []int{1, 2, 3}, true, false},
		{"fake kept a suffix", []int{1, 2, 3, 4}, []int{3, 4}, false, true},
		{"nothing sent, nothing stored", nil, nil, false, true},
	} {
		if p := seqProblem(tc.got, tc.sent, tc.mayLose); (p == "") != tc.ok {
			t.Errorf("%s: seqProblem = %q, want ok=%v", tc.name, p, tc.ok)
		}
	}
}

// TestChaosChecksCanFail shows the chaos suite's checks catch what they
// claim to: a committed event removed from the stream, one added twice, and
// a cached object the truth does not have.
func TestChaosChecksCanFail(t *testing.T) {
	c := newChaosWorld(t, 2, 40)
	c.startChaosWorker()
	c.waitHealed("cold start")
	c.waitCommitted()
	if rep := c.checkStream(); len(rep.problems) != 0 || rep.checked == 0 {
		t.Fatalf("healthy fleet: %d events checked, problems %v", rep.checked, rep.problems)
	}
	ctx := context.Background()
	msgs, err := c.client.XRange(ctx, prefix+"events", "-", "+").Result()
	if err != nil || len(msgs) < 3 {
		t.Fatalf("stream: %d entries, %v", len(msgs), err)
	}
	victim := msgs[1]
	if err := c.client.XDel(ctx, prefix+"events", victim.ID).Err(); err != nil {
		t.Fatal(err)
	}
	if rep := c.checkStream(); !hasProblem(rep, "not 1..k") {
		t.Errorf("an event removed from the stream went unnoticed: %v", rep.problems)
	}
	if err := c.client.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "events", Values: victim.Values}).Err(); err != nil {
		t.Fatal(err)
	}
	if rep := c.checkStream(); len(rep.problems) != 0 {
		t.Errorf("the event put back should satisfy the check: %v", rep.problems)
	}
	if err := c.client.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "events", Values: victim.Values}).Err(); err != nil {
		t.Fatal(err)
	}
	if rep := c.checkStream(); !hasProblem(rep, "twice") {
		t.Errorf("an event in the stream twice went unnoticed: %v", rep.problems)
	}
	// The cache check: a role written behind the fleet's back is found.
	if n, diffs := c.matchCache(chaosCacheKinds, 5*time.Second); len(diffs) != 0 || n == 0 {
		t.Fatalf("healthy fleet: %d guilds, cache differs: %v", n, diffs)
	}
	roles, err := c.client.Keys(ctx, prefix+"cache:g:*:roles").Result()
	if err != nil || len(roles) == 0 {
		t.Fatalf("no cached roles (%v)", err)
	}
	if err := c.client.HSet(ctx, roles[0], "1", `{"id":"1","name":"forged"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if _, diffs := c.matchCache(chaosCacheKinds, 0); len(diffs) != 1 || !strings.Contains(diffs[0], "roles[1]") {
		t.Errorf("a forged cached role went unnoticed: %v", diffs)
	}
}

func hasProblem(rep streamReport, needle string) bool {
	for _, p := range rep.problems {
		if strings.Contains(p, needle) {
			return true
		}
	}
	return false
}
