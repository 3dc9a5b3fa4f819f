package integration

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A live worker fed garbage by the fake over its real zlib-stream
// connections: text that is not JSON, a corrupt zlib stream, wrong JSON
// types in every field of the envelope, a HELLO of the wrong shape, an 8 MiB
// hostile nesting, a frame over the client's 64 MiB read limit. Each is an
// error and a reconnect with RESUME (never a new IDENTIFY, never a panic),
// and at the end every event is in the stream exactly once.
func TestBadInputLiveWorkerSurvivesGarbage(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	f := newFleet(t, 2, 100)
	w := f.startWorker("w1")
	f.waitAllReady("every shard READY")
	rnd := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rnd.UintN(256))
	}
	garbage := []struct {
		name   string
		frame  []byte
		binary bool
	}{
		{"text that is not JSON", []byte("not json {{{"), false},
		{"a corrupt zlib stream", noise, true},
		{"op of the wrong type", []byte(`{"op":"ten","d":5}`), false},
		{"dispatch fields of wrong types", []byte(`{"op":0,"s":"x","t":5,"d":[]}`), false},
		{"HELLO of the wrong shape", []byte(`{"op":10,"d":{"heartbeat_interval":"soon"}}`), false},
		{"8 MiB of nesting", bytes.Repeat([]byte("["), 8<<20), false},
		{"a frame over the 64 MiB read limit", bytes.Repeat([]byte{'x'}, 64<<20+1), true},
		{"a truncated object", []byte(`{"op":0,"s":99,"t":"MESSAGE_CREATE","d":{"id":`), false},
		{"JSON null", []byte(`null`), false},
	}
	reconnects := 0
	var ignored []string
	for i, g := range garbage {
		shard := i % 2
		before := f.fake.stats(t)
		f.fake.postBody(t, "/_fake/raw?shard="+strconv.Itoa(shard)+"&binary="+strconv.FormatBool(g.binary), g.frame)
		// The client either closes and RESUMEs or ignores the frame: give it
		// a few seconds to do the former, then require both shards back.
		if resumedWithin(f, before.Resumes, 3*time.Second) {
			reconnects++
		} else {
			ignored = append(ignored, g.name)
		}
		poll(t, "both shards connected after "+g.name, 30*time.Second, func() bool {
			st := f.fake.stats(t)
			return st.Connections == 2 && st.LiveSessions == 2
		})
		f.waitAllReady("every shard READY after " + g.name)
	}
	t.Logf("%d garbage frames led to a RESUME; ignored without a reconnect: %v", reconnects, ignored)
	if reconnects < 4 {
		t.Errorf("only %d of %d garbage frames led to a reconnect: the client swallowed bad input", reconnects, len(garbage))
	}
	st := f.checkInvariants()
	if st.Identifies != 2 || st.FailedResumes != 0 {
		t.Errorf("%d identifies, %d failed resumes: garbage must cost a RESUME, never the session", st.Identifies, st.FailedResumes)
	}
	if linesWith(w, "closing gateway connection") == 0 {
		t.Error("the worker logged no error for the garbage")
	}
	f.checkStream()
	checkNoPanic(t, w, f.fake.proc)
}

// Bad configuration: each bad value, from the environment or a flag, makes
// the real binary exit 2 with a message naming the setting, and never
// prints the token.
func TestBadInputConfigurationExitsTwoNamingTheSetting(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	needBinaries(t)
	const tok = "bad-config-token-4c1d"
	base := []string{"DISCORD_TOKEN=" + tok, "HTTP_ADDR=", "SUMMARY_INTERVAL=0"}
	cases := []struct {
		env  []string
		args []string
		want string
	}{
		{env: []string{"DISCORD_TOKEN="}, want: "DISCORD_TOKEN"},
		{env: []string{"DISCORD_TOKEN=has space " + tok}, want: "DISCORD_TOKEN"},
		{env: []string{"LEASE_TTL=soon"}, want: "LEASE_TTL"},
		{env: []string{"LEASE_TTL=-1s"}, want: "LEASE_TTL"},
		{env: []string{"LEASE_TTL=3s", "LEASE_RENEW_DEADLINE=4s"}, want: "LEASE_RENEW_DEADLINE"},
		{env: []string{"LEASE_TTL=3s", "LEASE_RENEW_INTERVAL=2s"}, want: "LEASE_RENEW_INTERVAL"},
		{env: []string{"SHARD_COUNT=-3"}, want: "SHARD_COUNT"},
		{env: []string{"SHARD_COUNT=many"}, want: "SHARD_COUNT"},
		{env: []string{"MAX_CONCURRENCY=-1"}, want: "MAX_CONCURRENCY"},
		{env: []string{"IDENTIFY_WINDOW=0s"}, want: "IDENTIFY_WINDOW"},
		{env: []string{"COMPRESSION=brotli"}, want: "COMPRESSION"},
		{env: []string{"INTENTS=all"}, want: "INTENTS"},
		{env: []string{"INTENTS=99999999999"}, want: "INTENTS"},
		{env: []string{"REDIS_URL=ftp://127.0.0.1:6379"}, want: "REDIS_URL"},
		{env: []string{"REDIS_URL=redis://127.0.0.1:notaport"}, want: "REDIS_URL"},
		{env: []string{"KEY_PREFIX={}"}, want: "KEY_PREFIX"},
		{env: []string{"WORKER_ID=bad id!"}, want: "WORKER_ID"},
		{env: []string{"DISCORD_API_URL=not a url"}, want: "DISCORD_API_URL"},
		{env: []string{"GATEWAY_URL=http://127.0.0.1:1/gateway"}, want: "GATEWAY_URL"},
		{env: []string{"HTTP_ADDR=nonsense"}, want: "HTTP_ADDR"},
		{env: []string{"LOG_FORMAT=xml"}, want: "LOG_FORMAT"},
		{env: []string{"LOG_LEVEL=loud"}, want: "LOG_LEVEL"},
		{env: []string{"EVENT_BATCH_SIZE=0"}, want: "EVENT_BATCH_SIZE"},
		{env: []string{"EVENT_STREAM_MAXLEN=-5"}, want: "EVENT_STREAM_MAXLEN"},
		{env: []string{"IDENTIFY_BUDGET_RESERVE=-1"}, want: "IDENTIFY_BUDGET_RESERVE"},
		{env: []string{"SIM=maybe"}, want: "SIM"},
		{env: []string{"READY_TIMEOUT=0s"}, want: "READY_TIMEOUT"},
		{args: []string{"-lease-ttl", "zz"}, want: "-lease-ttl"},
		{args: []string{"-shard-count", "-1"}, want: "SHARD_COUNT"},
		{args: []string{"-no-such-flag"}, want: "no-such-flag"},
		{args: []string{"extra-argument"}, want: "extra-argument"},
	}
	for _, tc := range cases {
		name := strings.Join(append(append([]string{}, tc.env...), tc.args...), " ")
		t.Run(name, func(t *testing.T) {
			out, code := runWorkerCmd(t, 10*time.Second, append(append([]string{}, base...), tc.env...), tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("output does not name %s:\n%s", tc.want, out)
			}
			if strings.Contains(out, tok) {
				t.Errorf("output holds the token:\n%s", out)
			}
			if strings.Contains(out, "panic") {
				t.Errorf("panic:\n%s", out)
			}
		})
	}
}

// Bad Redis data, written while the fleet's only worker is dead: a session
// record with garbage in every field (seq, session_id, resume_url). The new
// worker logs a clear warning and brings every shard READY: the intact
// sessions by RESUME, the corrupt one by a new IDENTIFY after the fake
// refuses the garbage session id. Nothing is doubled in the stream; no panic.
func TestBadInputCorruptSessionRecord(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	f := fleetWithDeadWorker(t)
	ctx := context.Background()
	if err := f.client.HSet(ctx, prefix+"session:3:0", "seq", "banana", "resume_url", "::not a url::",
		"session_id", "\x00\xff").Err(); err != nil {
		t.Fatal(err)
	}
	before := f.fake.stats(t)
	w2 := f.startWorker("w2")
	f.waitAllReady("every shard READY despite the corrupt session record", "w2")
	st := f.checkInvariants()
	if st.Resumes < before.Resumes+2 {
		t.Errorf("the two intact sessions were not both resumed: resumes %d -> %d", before.Resumes, st.Resumes)
	}
	if st.Identifies > before.Identifies+1 {
		t.Errorf("identifies %d -> %d: more than the corrupt shard re-identified", before.Identifies, st.Identifies)
	}
	if linesWith(w2, "resume URL is unusable") == 0 {
		t.Error("w2 did not log the corrupt resume URL")
	}
	// The corrupt shard's old session cannot be resumed, so what the fake
	// sent it after the kill is legitimately lost; nothing may be doubled.
	if d := streamDuplicates(t, f.client, prefix); d != 0 {
		t.Errorf("%d duplicate (session, seq) entries in the stream", d)
	}
	checkNoPanic(t, w2)
}

// A corrupt layout must not take the fleet down: the running worker keeps
// serving its shards and a joining worker says what is wrong. (Before
// c04405b the renew script failed on the bad layout version, every worker
// self-fenced and stopped every shard.)
func TestBadInputCorruptLayout(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	f := newFleet(t, 3, 100)
	w1 := f.startWorker("w1")
	f.waitAllReady("every shard READY")
	if err := f.client.HSet(context.Background(), prefix+"layout", "version", "x", "data", "{garbage").Err(); err != nil {
		t.Fatal(err)
	}
	w2 := f.startWorker("w2")
	poll(t, "w2 to report the corrupt layout", 20*time.Second, func() bool {
		return strings.Contains(strings.ToLower(w2.out.String()), "layout")
	})
	time.Sleep(3 * leaseTTL) // a span in which nothing may break (several renews and reconciles)
	owners, _ := f.owners()
	if len(owners) != 3 {
		t.Errorf("only %d of 3 shards READY with a corrupt layout: %v", len(owners), owners)
	}
	f.checkInvariants()
	checkNoPanic(t, w1, w2)
}

// A session key of the wrong type (a string where a hash belongs) must cost
// only its own shard: the worker logs the error and serves the other shards.
// (Before c04405b one WRONGTYPE failed internal/lease's whole claim batch and
// the worker claimed none of its shards.)
func TestBadInputWrongTypeSessionKey(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	f := fleetWithDeadWorker(t)
	ctx := context.Background()
	key := prefix + "session:3:1"
	if err := f.client.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.client.Set(ctx, key, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	w2 := f.startWorker("w2")
	f.waitAllReady("every shard READY on w2 (shard 1 by a new IDENTIFY)", "w2")
	if !strings.Contains(w2.out.String(), "WRONGTYPE") {
		t.Error("w2 did not log the wrong-type key")
	}
	f.checkInvariants()
	checkNoPanic(t, w2)
}

// resumedWithin reports whether the fake counts more than n successful
// resumes within d.
func resumedWithin(f *fleet, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if f.fake.stats(f.t).Resumes > n {
			return true
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	return false
}

// A gateway node that ACKs heartbeats but never answers RESUME (the fake
// withholds RESUMED) must not hold a live worker's shard forever: with
// READY_TIMEOUT the worker closes (4901) and retries, and once the node
// answers, the shard RESUMEs (no IDENTIFY) and the stream is exact.
func TestBadInputStuckGatewayReadyTimeout(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	f := newFleet(t, 2, 100)
	w := f.startWorkerWith("w1", "READY_TIMEOUT=400ms")
	f.waitAllReady("every shard READY")
	f.fake.post(t, "/_fake/withhold-ready?on=true")
	f.fake.post(t, "/_fake/reconnect?shard=0")
	poll(t, "two ready-timeout closes from the client", 20*time.Second, func() bool {
		n := 0
		for _, c := range f.fake.closes(t) {
			// A connection whose RESUME got no answer has no session, so
			// the fake cannot name its shard: count the code alone.
			if c.FromClient && c.Code == 4901 {
				n++
			}
		}
		return n >= 3 // the op 7 close, then at least two unanswered RESUMEs
	})
	f.fake.post(t, "/_fake/withhold-ready?on=false")
	f.waitAllReady("shard 0 READY once the node answers")
	st := f.checkInvariants()
	if st.Identifies != 2 || st.Resumes == 0 {
		t.Errorf("%d identifies, %d resumes: a stuck RESUME must be retried, not re-identified", st.Identifies, st.Resumes)
	}
	if linesWith(w, "no READY or RESUMED in time") == 0 {
		t.Error("the worker did not log the ready timeout")
	}
	f.checkStream()
	checkNoPanic(t, w)
}

// fleetWithDeadWorker starts a 3-shard fleet with one worker, waits until
// every shard is READY, then kills the worker (kill -9) and waits for it to
// exit, leaving its sessions in Redis.
func fleetWithDeadWorker(t *testing.T) *fleet {
	t.Helper()
	f := newFleet(t, 3, 100)
	w1 := f.startWorker("w1")
	f.waitAllReady("every shard READY")
	w1.signal(syscall.SIGKILL)
	<-w1.done
	return f
}
