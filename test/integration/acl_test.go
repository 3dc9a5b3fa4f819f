package integration

import (
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/keyspace"
	"github.com/shardfleet/shardfleet/internal/redistest"
)

// readmeACL reads the fleet's ACL rules from README.md, its lines starting
// "ACL SETUSER shardfleet" (the first for every deployment, the next for a
// Cluster), and returns the ACL SETUSER command giving user the rules of
// the first lines lines, with password pass and this package's key prefix
// (and its partitions' tags).
func readmeACL(t *testing.T, user, pass string, lines int) []any {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	args := []any{"ACL", "SETUSER", user}
	for line := range strings.Lines(string(readme)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "ACL SETUSER shardfleet ")
		if !ok || lines == 0 {
			continue
		}
		lines--
		for _, f := range strings.Fields(rest) {
			if f == ">CHANGE-ME" {
				f = ">" + pass
			}
			f = strings.ReplaceAll(f, "{shardfleet}:", prefix)
			args = append(args, strings.ReplaceAll(f, "{shardfleet/", strings.TrimSuffix(prefix, "}:")+"/"))
		}
	}
	if lines > 0 {
		t.Fatalf(`README.md lacks %d "ACL SETUSER shardfleet" lines`, lines)
	}
	return args
}

// A fleet runs under exactly the README's ACL rule set: two workers serve
// every shard, every event reaches the stream, `worker status` and /status
// read the fleet, a SIGTERM hands w1's shards to w2, and no command is
// refused (Redis's ACL LOG stays empty). The same set without +evalsha
// makes the worker fail with Redis's NOPERM, so the test can tell a missing
// permission.
func TestACLFleetUnderREADMERules(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	const pass = "acl-pass-41c7e9"
	f := newFleet(t, 4, 100)
	ctx := context.Background()
	rules := readmeACL(t, "fleet", pass, 1)
	if err := f.client.Do(ctx, rules...).Err(); err != nil {
		t.Fatalf("ACL SETUSER with the README's rules: %v", err)
	}
	f.startUnderACL("redis://fleet:" + pass + "@" + f.redis.Addr())
	if body := httpText(t, "http://"+envValue(f.workers["w1"].cmd.Env, "HTTP_ADDR")+"/status"); strings.Contains(body, "fleet_error") {
		t.Errorf("/status under the ACL:\n%s", body)
	}
	// A SIGTERM hand-off and the take-over run the lease scripts' other paths.
	f.workers["w1"].signal(syscall.SIGTERM)
	if err := f.workers["w1"].wait(t, 15*time.Second); err != nil {
		t.Errorf("w1 after SIGTERM: %v", err)
	}
	f.waitAllReady("every shard READY on w2 after w1's hand-off", "w2")
	f.checkStream()
	f.checkNoRefusal(f.client)

	t.Run("without evalsha", func(t *testing.T) {
		less := slices.DeleteFunc(readmeACL(t, "fleet-less", pass, 1), func(a any) bool { return a == "+evalsha" })
		if err := f.client.Do(ctx, less...).Err(); err != nil {
			t.Fatal(err)
		}
		env := append(f.workerEnv("w-less"), "REDIS_URL=redis://fleet-less:"+pass+"@"+f.redis.Addr())
		out, code := runWorkerCmd(t, 30*time.Second, env)
		if code == 0 || !strings.Contains(out, "NOPERM") || !strings.Contains(out, "evalsha") {
			t.Errorf("worker without +evalsha: exit %d, want a failure naming NOPERM and evalsha:\n%s", code, lastLines(out, 20))
		}
	})
}

// The same fleet on a 3-node Redis Cluster, under the README's rules plus its
// Cluster line (the partitions' keys, and what go-redis's cluster client runs
// to learn the slots), set on every node: the fleet gets the Cluster default
// of 16 partitions, every shard is READY, every event in its partition's
// stream, no node refuses a command.
func TestACLClusterFleetUnderREADMERules(t *testing.T) {
	t.Parallel() // own cluster, fake and workers: independent of every other test
	const pass = "acl-pass-41c7e9"
	needBinaries(t)
	cl := redistest.StartCluster(t, 3)
	ctx := context.Background()
	rules := readmeACL(t, "fleet", pass, 2)
	var home *redis.Client // the node that holds the prefix's slot: the fleet-wide keys
	var nodes []*redis.Client
	for _, n := range cl.Nodes {
		c := n.Client(t)
		nodes = append(nodes, c)
		if err := c.Do(ctx, rules...).Err(); err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", n.Addr(), err)
		}
		if err := c.Get(ctx, prefix+"probe").Err(); err == redis.Nil {
			home = c
		}
	}
	if home == nil {
		t.Fatal("no node holds the prefix's slot")
	}
	f := &fleet{t: t, redis: cl.Nodes[0], client: home, fake: startFake(t, 4, 100), shards: 4, token: "itest-token",
		workers: map[string]*proc{}}
	f.startUnderACL("redis+cluster://fleet:" + pass + "@" + strings.Join(cl.Addrs(), ","))
	cc := cl.Client(t)
	if n := storedKeys(t, cc, prefix).Partitions(); n != keyspace.ClusterPartitions {
		t.Errorf("the fleet on Cluster has %d partitions, want the default %d", n, keyspace.ClusterPartitions)
	}
	checkStreamOf(t, cc, f.fake, prefix)
	f.checkNoRefusal(nodes...)
}

// startUnderACL starts workers w1 and w2 with REDIS_URL url, waits until
// every shard is READY and checks that `worker status` reads the fleet
// through url.
func (f *fleet) startUnderACL(url string) {
	f.t.Helper()
	for _, id := range []string{"w1", "w2"} {
		f.startWorkerWith(id, "REDIS_URL="+url)
	}
	f.waitAllReady("every shard READY under the README's ACL")
	status, code := runWorkerCmd(f.t, 10*time.Second, []string{"REDIS_URL=" + url, "KEY_PREFIX=" + prefix}, "status")
	if code != 0 || strings.Count(status, "ready") != f.shards {
		f.t.Errorf("worker status under the ACL: exit %d\n%s", code, status)
	}
}

// checkNoRefusal asserts that Redis refused the fleet no command: the ACL
// LOG of every server is empty and no worker met NOPERM.
func (f *fleet) checkNoRefusal(servers ...*redis.Client) {
	f.t.Helper()
	for _, c := range servers {
		refused, err := c.Do(context.Background(), "ACL", "LOG").Slice()
		if err != nil {
			f.t.Fatal(err)
		}
		for _, entry := range refused {
			f.t.Errorf("Redis refused the fleet's user: %v", entry)
		}
	}
	for id, p := range f.workers {
		if strings.Contains(p.out.String(), "NOPERM") {
			f.t.Errorf("worker %s met NOPERM:\n%s", id, lastLines(p.out.String(), 20))
		}
	}
}
