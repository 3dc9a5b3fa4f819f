package integration

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The chaos suite: rounds of seeded random faults against a live fleet.
//
//	go test -race -run TestChaos -v ./test/integration/ -chaos.rounds=30 -chaos.seed=N
//
// (or CHAOS_ROUNDS / CHAOS_SEED). Without them it runs the short mode
// (chaosShortRounds rounds, a fresh seed), which the normal go test run and
// CI include. The seed is printed first, so a failing run can be replayed.
var (
	chaosRounds = flag.Int("chaos.rounds", 0, "chaos rounds (0: $CHAOS_ROUNDS, else the short mode's "+strconv.Itoa(chaosShortRounds)+")")
	chaosSeed   = flag.Uint64("chaos.seed", 0, "chaos seed (0: $CHAOS_SEED, else from the clock)")
	chaosLoadF  = flag.Float64("chaos.load", chaosLoad, "the fake's steady dispatches per second")
)

const (
	chaosShortRounds = 8
	chaosShards      = 6
	chaosLoad        = 60 // dispatches per second from the fake, spread over the shards
	chaosWorkers     = 3
)

func chaosSettings() (rounds int, seed uint64) {
	rounds, seed = *chaosRounds, *chaosSeed
	if rounds == 0 {
		rounds, _ = strconv.Atoi(os.Getenv("CHAOS_ROUNDS"))
	}
	if rounds <= 0 {
		rounds = chaosShortRounds
	}
	if seed == 0 {
		seed, _ = strconv.ParseUint(os.Getenv("CHAOS_SEED"), 10, 64)
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	return rounds, seed
}

// TestChaos checks the design's invariants after every round of faults:
//
//  1. no duplicate live session for a (shard, count): the fake's
//     duplicate_sessions counter must not move, except in a SIGSTOP round,
//     where the frozen zombie's connection stays open at the fake until its
//     heartbeat timeout and may overlap a successor that had to IDENTIFY (the
//     zombie can send nothing; it must self-fence once thawed, which the
//     round checks); even then every overlap the fake recorded must have
//     ended, within chaosDuplicateBound;
//  2. no identify violation (the fake's pacing check, window 60 ms, below
//     the workers' 100 ms + 20 ms);
//  3. the stream holds every dispatch of every session exactly once (see
//     checkStream for the precise rule and the one allowed loss: the tail of
//     a session Discord invalidated);
//  4. every shard of the layout READY on exactly one live worker within
//     chaosHealBound of the fault healing;
//  5. fatal closes do not loop: the fake sends no fatal close we did not
//     inject, and a (shard, count) split after 4011 is never IDENTIFYed again.
func TestChaos(t *testing.T) {
	rounds, seed := chaosSettings()
	t.Logf("chaos seed %d, %d rounds, load %v/s (replay: go test -race -run 'TestChaos$' -v ./test/integration/ -chaos.seed=%d -chaos.rounds=%d -chaos.load=%v)",
		seed, rounds, *chaosLoadF, seed, rounds, *chaosLoadF)
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	c := newChaosWorld(t, chaosShards, *chaosLoadF)
	for range chaosWorkers {
		c.startChaosWorker()
	}
	start := time.Now()
	c.waitHealed("cold start")
	t.Logf("cold start: every shard READY in %v", time.Since(start).Round(time.Millisecond))

	var records []roundRecord
	order := rng.Perm(len(chaosFaults))
	for i := range rounds {
		if i > 0 && i%len(chaosFaults) == 0 {
			order = rng.Perm(len(chaosFaults))
		}
		f := chaosFaults[order[i%len(chaosFaults)]]
		rec := c.round(i+1, f, rng)
		records = append(records, rec)
		t.Log(rec.row())
		if t.Failed() {
			break
		}
	}
	t.Log("\n" + chaosTable(records))
	var retries, lost, rejoins int
	for id, p := range c.workers {
		retries += linesWith(p, "open shard; retrying")
		for _, line := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(line, "open shard; retrying") {
				t.Logf("%s: %s", id, line)
			}
		}
		lost += linesWith(p, "lease lost")
		rejoins += linesWith(p, "fleet session ended")
	}
	t.Logf("worker logs: %d open retries, %d shards stopped for a lost lease, %d fleet rejoins after a self-fence or expiry",
		retries, lost, rejoins)
	c.checkNoSecret()
}

// chaosDuplicateBound bounds how long two sessions of one shard may be live
// at once: a frozen worker's connection lives at the fake until the fake's
// heartbeat timeout (1.5 × the 1 s interval); the rest is slack for a loaded
// machine.
const chaosDuplicateBound = 3 * time.Second

// checkDuplicateWindows checks the fake's records of the duplicates that
// began in this round (the ones after the first `from`): each has ended, and
// within chaosDuplicateBound.
func (c *chaosWorld) checkDuplicateWindows(where string, from int) {
	c.t.Helper()
	dups := c.fake.duplicates(c.t)
	for _, d := range dups[min(from, len(dups)):] {
		switch {
		case d.Ended.IsZero():
			c.t.Errorf("invariant 1: %s: shard %d/%d still served twice (sessions %s and %v) after the round healed",
				where, d.ShardID, d.ShardCount, d.SessionID, d.LiveSessionIDs)
		case d.Ended.Sub(d.Time) > chaosDuplicateBound:
			c.t.Errorf("invariant 1: %s: shard %d/%d served twice for %v (bound %v)",
				where, d.ShardID, d.ShardCount, d.Ended.Sub(d.Time), chaosDuplicateBound)
		}
	}
}

// wipesRedis names the rounds in which Redis loses its data.
var wipesRedis = map[string]bool{"redis restart (data lost)": true, "redis flushall after IDENTIFYs": true}

// round runs one fault and checks the invariants after it healed.
func (c *chaosWorld) round(n int, f chaosFault, rng *rand.Rand) roundRecord {
	c.t.Helper()
	before := c.fake.stats(c.t)
	rec := roundRecord{n: n, fault: f.name}
	prev := c.lastStream
	cmds := chaosCommands{ids: map[string]string{}, expired: map[string]string{}}
	if !wipesRedis[f.name] { // queued commands and their outcomes go with the data
		c.queueCommands(n, "before", &cmds)
	}
	c.setMutations(c.mutations)
	f.run(c, rng, &rec)
	c.queueCommands(n, "during", &cmds)
	healStart, rebuilt := time.Now(), -1
	if wipesRedis[f.name] { // healed once every shard's cache is rebuilt too
		rebuilt = c.waitRebuilt(fmt.Sprintf("round %d (%s)", n, f.name))
	}
	rebuild := time.Since(healStart)
	rec.heal = rebuild + c.waitHealed(fmt.Sprintf("round %d (%s)", n, f.name))
	c.noteFailedResumes()
	c.setMutations(0)
	c.waitCommitted()
	after := c.fake.stats(c.t)
	rec.identifies = after.Identifies - before.Identifies
	rec.resumes = after.Resumes - before.Resumes
	rec.failedResumes = after.FailedResumes - before.FailedResumes
	rec.duplicates = after.DuplicateSessions - before.DuplicateSessions
	where := fmt.Sprintf("round %d (%s, %s)", n, f.name, rec.note)
	rec.commands = c.checkCommands(where, cmds)
	if rec.duplicates != 0 && !rec.allowDuplicates {
		c.t.Errorf("invariant 1: %s: %d duplicate live sessions", where, rec.duplicates)
	}
	c.checkDuplicateWindows(where, before.DuplicateSessions)
	if after.IdentifyViolations != 0 {
		c.t.Errorf("invariant 2: %s: %d identify violations so far", where, after.IdentifyViolations)
	}
	if after.SequenceGaps != 0 {
		c.t.Errorf("invariant 3: %s: the fake saw %d sequence gaps", where, after.SequenceGaps)
	}
	if got := after.FatalCloses - before.FatalCloses; got != rec.expectFatal {
		c.t.Errorf("invariant 5: %s: %d fatal closes, %d injected", where, got, rec.expectFatal)
	}
	for _, p := range c.checkNoLoop() {
		c.t.Errorf("invariant 5: %s: %s", where, p)
	}
	sr := c.checkStream()
	rec.events, rec.lostTail = sr.checked-prev.checked, sr.lostTail-prev.lostTail
	c.lastStream = sr
	for _, p := range sr.problems {
		c.t.Errorf("invariant 3: %s: %s", where, p)
	}
	rec.cache = c.checkCache(where)
	if rebuilt >= 0 {
		rec.cache += fmt.Sprintf("; %d rebuilds so far", rebuilt)
	}
	c.setLoad(c.load)
	return rec
}

func (r roundRecord) row() string {
	dup := strconv.Itoa(r.duplicates)
	if r.allowDuplicates && r.duplicates > 0 {
		dup += " (zombie window)"
	}
	return fmt.Sprintf("%5d | %-30s | %8s | %10d | %7d | %6d | %-16s | %10d | %11d | %-16s | %-18s | %s", r.n, r.fault,
		r.heal.Round(10*time.Millisecond), r.identifies, r.resumes, r.failedResumes, dup, r.events, r.lostTail, r.commands,
		r.cache, r.note)
}

func chaosTable(records []roundRecord) string {
	var b strings.Builder
	header := fmt.Sprintf("%5s | %-30s | %8s | %10s | %7s | %6s | %-16s | %10s | %11s | %-16s | %-18s | %s", "round", "fault", "heal",
		"identifies", "resumes", "failed", "duplicates", "new events", "unreachable", "cmds s/r/rep/x/l", "cache vs truth", "note")
	b.WriteString(header + "\n" + strings.Repeat("-", len(header)+20) + "\n")
	var tot roundRecord
	var maxHeal time.Duration
	for _, r := range records {
		b.WriteString(r.row() + "\n")
		tot.identifies += r.identifies
		tot.resumes += r.resumes
		tot.failedResumes += r.failedResumes
		tot.duplicates += r.duplicates
		tot.events += r.events
		tot.lostTail += r.lostTail
		tot.commands.sent += r.commands.sent
		tot.commands.recorded += r.commands.recorded
		tot.commands.repeated += r.commands.repeated
		tot.commands.expired += r.commands.expired
		tot.commands.lost += r.commands.lost
		tot.heal += r.heal
		maxHeal = max(maxHeal, r.heal)
	}
	if n := len(records); n > 0 {
		fmt.Fprintf(&b, "total: %d rounds; heal mean %v, max %v (bound %v); identifies %d; resumes %d (failed %d); "+
			"duplicates %d; events committed and checked %d (each once, none lost); unreachable tails of invalidated sessions %d; "+
			"commands sent %d, recorded by the fake %d, repeated %d, expired %d, lost %d\n",
			n, (tot.heal / time.Duration(n)).Round(10*time.Millisecond), maxHeal.Round(10*time.Millisecond), chaosHealBound,
			tot.identifies, tot.resumes, tot.failedResumes, tot.duplicates, tot.events, tot.lostTail,
			tot.commands.sent, tot.commands.recorded, tot.commands.repeated, tot.commands.expired, tot.commands.lost)
	}
	return b.String()
}

// TestChaosDataLoss runs the rounds that wipe Redis, in a fixed order, on one
// fleet: a restart without persistence, a FLUSHALL just after a burst of
// IDENTIFYs, and a black hole past the TTL. TestChaos draws its rounds at
// random; these are the ones the data-loss probe (internal/lease) must pass
// every time.
func TestChaosDataLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := newChaosWorld(t, chaosShards, chaosLoad)
	for range chaosWorkers {
		c.startChaosWorker()
	}
	c.waitHealed("cold start")
	var records []roundRecord
	for _, name := range []string{"redis restart (data lost)", "redis flushall after IDENTIFYs", "redis black hole > TTL"} {
		i := slices.IndexFunc(chaosFaults, func(f chaosFault) bool { return f.name == name })
		if i < 0 {
			t.Fatalf("no chaos fault %q", name)
		}
		records = append(records, c.round(len(records)+1, chaosFaults[i], rng))
		if t.Failed() {
			break
		}
	}
	t.Log("\n" + chaosTable(records))
}
