package integration

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// canaryToken is distinctive so a leak anywhere is found by substring.
const canaryToken = "SFcanary.MTk4NzY1NDMyMQ.tok-5b9f0e2a7c4d-leakcheck"

// The token appears nowhere: not in any process's output (debug logs, text
// and JSON), not in /metrics, /status, /healthz or /readyz, not in `worker
// status` (table and JSON), and not in any Redis value (every key SCANned and
// read by type, streams entry by entry) — after identifies, resumes, a
// re-identify, a close and a TCP drop have all been logged.
func TestSecurityTokenNowhere(t *testing.T) {
	t.Parallel()    // own redis-server, fake and workers: independent of every other test
	needBinaries(t) // before startFake, which this test calls itself
	f := newFleetWithFake(t, 4, startFake(t, 4, 100, "-token", canaryToken))
	f.token = canaryToken
	f.startWorkerWith("w1", "LOG_LEVEL=debug")
	f.startWorkerWith("w2", "LOG_LEVEL=debug", "LOG_FORMAT=json")
	f.waitAllReady("every shard READY")
	before := f.fake.stats(t)
	f.fake.post(t, "/_fake/reconnect?shard=0")
	f.fake.post(t, "/_fake/invalidate?shard=1&resumable=false")
	f.fake.post(t, "/_fake/close?shard=2&code=4000&reason=x")
	f.fake.post(t, "/_fake/drop?shard=3")
	poll(t, "the shards to come back (3 resumes, 1 re-identify)", 30*time.Second, func() bool {
		st := f.fake.stats(t)
		return st.Resumes >= before.Resumes+3 && st.Identifies >= before.Identifies+1 && st.LiveSessions == 4
	})
	f.waitAllReady("every shard READY after the chaos")

	texts := map[string]string{}
	for id, p := range f.workers {
		texts["output of worker "+id] = p.out.String()
		addr := envValue(p.cmd.Env, "HTTP_ADDR")
		for _, path := range []string{"/metrics", "/status", "/healthz", "/readyz"} {
			texts["worker "+id+" "+path] = httpText(t, "http://"+addr+path)
		}
	}
	if !strings.Contains(texts["worker w1 /metrics"], "# TYPE") || !strings.Contains(texts["worker w1 /status"], "shard") {
		t.Fatalf("/metrics or /status served nothing to check:\n%s\n%s", texts["worker w1 /metrics"], texts["worker w1 /status"])
	}
	statusEnv := []string{"REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix, "DISCORD_TOKEN=" + canaryToken}
	for _, args := range [][]string{{"status"}, {"status", "-json"}} {
		out, code := runWorkerCmd(t, 10*time.Second, statusEnv, args...)
		if code != 0 || !strings.Contains(out, "ready") {
			t.Fatalf("worker %v: exit %d\n%s", args, code, out)
		}
		texts["worker "+strings.Join(args, " ")] = out
	}
	texts["output of fakediscord"] = f.fake.out.String()
	dump := dumpRedis(t, f.client)
	streamEntries := 0
	for k, v := range dump {
		texts["redis key "+k] = v
		if strings.HasPrefix(v, "stream ") {
			streamEntries += strings.Count(v, "{")
		}
	}
	if len(dump) < 10 || streamEntries == 0 {
		t.Fatalf("Redis holds %d keys and %d stream entries: nothing to check", len(dump), streamEntries)
	}
	for where, text := range texts {
		if strings.Contains(text, canaryToken) {
			t.Errorf("the token appears in %s", where)
		}
	}
	if linesWith(f.workers["w1"], "level=DEBUG") == 0 {
		t.Error("w1 logged nothing at debug: the check covered less than it claims")
	}
	f.checkInvariants()
}

// Two fleets with different KEY_PREFIX share one Redis, each against its own
// fake Discord (one bot each, so the fake's one-session-per-shard check holds
// per fleet), with the same worker IDs. Each serves all its shards, identifies
// each shard once, keeps its stream exact; every key carries one of the two
// prefixes; a kill -9 in one fleet leaves the other untouched.
func TestSecurityTwoFleetsOneRedis(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	needBinaries(t)
	r := redistest.Start(t)
	client := r.Client(t)
	const n = 4
	type side struct {
		pfx string
		f   *fleet
	}
	sides := []*side{{pfx: "{fleetA}:"}, {pfx: "{fleetB}:"}}
	for i, s := range sides {
		tok := "token-of-fleet-" + strconv.Itoa(i)
		fk := startFake(t, n, 100, "-token", tok)
		s.f = &fleet{t: t, redis: r, client: client, fake: fk, shards: n, token: tok, workers: map[string]*proc{}}
		for _, id := range []string{"w1", "w2"} {
			s.f.startWorkerWith(id, "KEY_PREFIX="+s.pfx)
		}
	}
	readyBoth := func(what string) {
		poll(t, what, 30*time.Second, func() bool {
			return len(readyOwners(t, client, sides[0].pfx)) == n && len(readyOwners(t, client, sides[1].pfx)) == n
		})
	}
	readyBoth("both fleets READY")
	for _, s := range sides {
		if st := s.f.checkInvariants(); st.Identifies != n || st.LiveSessions != n {
			t.Errorf("%s: %d identifies, %d live sessions, want %d each", s.pfx, st.Identifies, st.LiveSessions, n)
		}
	}
	// kill -9 fleet A's owner of shard 0; fleet B must not notice.
	a, b := sides[0], sides[1]
	victim := readyOwners(t, client, a.pfx)[0]
	bOwners, bStats := readyOwners(t, client, b.pfx), b.f.fake.stats(t)
	a.f.workers[victim].signal(syscall.SIGKILL)
	poll(t, "fleet A's shards READY on its survivor", 30*time.Second, func() bool {
		o := readyOwners(t, client, a.pfx)
		if len(o) != n {
			return false
		}
		for _, w := range o {
			if w == victim {
				return false
			}
		}
		return true
	})
	if st := a.f.checkInvariants(); st.Identifies != n || st.Resumes == 0 {
		t.Errorf("fleet A after the kill: %d identifies (want %d), %d resumes", st.Identifies, n, st.Resumes)
	}
	bAfter := b.f.checkInvariants()
	if bAfter.Identifies != bStats.Identifies || bAfter.Resumes != bStats.Resumes || bAfter.Connections != n {
		t.Errorf("fleet B moved when fleet A lost a worker: %+v -> %+v", bStats, bAfter)
	}
	if o := readyOwners(t, client, b.pfx); len(o) != n || !sameOwners(o, bOwners) {
		t.Errorf("fleet B's owners changed: %v -> %v", bOwners, o)
	}
	for k := range dumpRedis(t, client) {
		if !strings.HasPrefix(k, a.pfx) && !strings.HasPrefix(k, b.pfx) {
			t.Errorf("key %q carries neither fleet's prefix", k)
		}
	}
	for _, s := range sides {
		checkStreamOf(t, client, s.f.fake, s.pfx)
	}
}

func sameOwners(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A Redis that needs a password works through REDIS_URL, with requirepass
// (default user) and with an ACL user confined to the fleet's keys and
// channel; the password is never printed. A wrong password stops the worker
// at start with a non-zero exit and "authentication failed".
func TestSecurityRedisAuth(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	needBinaries(t)
	const adminPass, userPass = "admin-pass-3f9a1c", "fleet-pass-8e2b7d"
	r := redistest.Start(t, redistest.Option{"--requirepass", adminPass})
	admin := redis.NewClient(&redis.Options{Addr: r.Addr(), Password: adminPass})
	t.Cleanup(func() { _ = admin.Close() })
	ctx := context.Background()
	err := admin.Do(ctx, "ACL", "SETUSER", "fleet", "on", ">"+userPass, "resetkeys", "~"+prefix+"*",
		"resetchannels", "&"+prefix+"*", "+@all", "-@admin").Err()
	if err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	urls := map[string]string{
		"requirepass": "redis://:" + adminPass + "@" + r.Addr(),
		"acl user":    "redis://fleet:" + userPass + "@" + r.Addr(),
	}
	var f *fleet
	for _, mode := range []string{"requirepass", "acl user"} {
		t.Run(mode, func(t *testing.T) {
			if err := admin.FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			f = &fleet{t: t, redis: r, client: admin, fake: startFake(t, 2, 50), shards: 2, token: "itest-token",
				workers: map[string]*proc{}}
			p := f.startWorkerWith("auth-"+strings.ReplaceAll(mode, " ", "-"), "REDIS_URL="+urls[mode])
			f.waitAllReady("every shard READY via " + mode)
			checkStreamOf(t, admin, f.fake, prefix)
			status, code := runWorkerCmd(t, 10*time.Second, []string{"REDIS_URL=" + urls[mode], "KEY_PREFIX=" + prefix}, "status")
			if code != 0 || !strings.Contains(status, "ready") {
				t.Errorf("worker status via %s: exit %d\n%s", mode, code, status)
			}
			if strings.Contains(status, adminPass) || strings.Contains(status, userPass) {
				t.Error("worker status printed a Redis password")
			}
			p.signal(syscall.SIGTERM)
			if err := p.wait(t, 15*time.Second); err != nil {
				t.Errorf("worker after SIGTERM: %v\n%s", err, lastLines(p.out.String(), 20))
			}
			out := p.out.String()
			for _, secret := range []string{adminPass, userPass} {
				if strings.Contains(out, secret) {
					t.Errorf("worker output holds a Redis password")
				}
			}
			if strings.Contains(out, "NOPERM") {
				t.Errorf("the ACL user lacked a permission:\n%s", lastLines(out, 20))
			}
		})
	}
	if f == nil {
		t.Fatal("no fleet ran")
	}
	t.Run("wrong password", func(t *testing.T) {
		for _, url := range []string{"redis://:wrong-pass-0d4c@" + r.Addr(), "redis://fleet:wrong-pass-0d4c@" + r.Addr(), r.URL()} {
			env := append(f.workerEnv("auth-wrong"), "REDIS_URL="+url)
			out, code := runWorkerCmd(t, 20*time.Second, env)
			if code == 0 || !strings.Contains(out, "authentication failed") {
				t.Errorf("REDIS_URL with a bad password: exit %d, output:\n%s", code, out)
			}
			for _, secret := range []string{"wrong-pass-0d4c", adminPass, userPass} {
				if strings.Contains(out, secret) {
					t.Errorf("output holds a password %q", secret)
				}
			}
		}
	})
}
