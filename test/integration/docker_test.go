package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/worker"
)

// simShards is the fake's -shards in docker-compose.yml's sim profile.
const simShards = 6

// compose runs one compose project of docker-compose.yml (in the repository
// root) with compose v2 (`docker compose`) when installed, else v1
// (`docker-compose --compatibility`, for deploy.replicas).
type compose struct {
	t       *testing.T
	argv    []string // the compose command, before -p
	project string
	env     []string // host ports for the published services
}

// needDocker skips the test when no Docker engine or compose is reachable,
// unless SHARDFLEET_REQUIRE_DOCKER=1 (CI), which makes it a failure.
func needDocker(t *testing.T) []string {
	t.Helper()
	missing := func(why string, err error, out []byte) {
		msg := fmt.Sprintf("%s: %v\n%s", why, err, out)
		if os.Getenv("SHARDFLEET_REQUIRE_DOCKER") == "1" {
			t.Fatal(msg + "(SHARDFLEET_REQUIRE_DOCKER=1: a missing engine is a failure)")
		}
		t.Skip(msg + "(set SHARDFLEET_REQUIRE_DOCKER=1 to fail instead)")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		missing("no Docker engine (DOCKER_HOST)", err, out)
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	out, err := exec.Command("docker-compose", "version").CombinedOutput()
	if err != nil {
		missing("neither `docker compose` nor docker-compose", err, out)
	}
	return []string{"docker-compose", "--compatibility"}
}

func newCompose(t *testing.T, argv []string) *compose {
	c := &compose{t: t, argv: argv, project: fmt.Sprintf("sftest%d%04d", os.Getpid(), rand.IntN(10000))}
	t.Logf("compose: %s, project %s", strings.Join(argv, " "), c.project)
	return c
}

// publishOnFreePorts sets the host ports of the published services to ports
// free now: call it just before up, so that nothing else has taken them
// meanwhile.
func (c *compose) publishOnFreePorts() {
	first := freePortRange(c.t, 3)
	c.env = []string{
		"FAKEDISCORD_PORT=" + strconv.Itoa(freePortRange(c.t, 1)),
		fmt.Sprintf("WORKER_PORTS=%d-%d", first, first+2),
	}
	c.t.Logf("published on %s", strings.Join(c.env, " "))
}

// freePortRange returns the first of n consecutive loopback ports that are
// free now, below Linux's ephemeral range (32768-60999), where outgoing
// connections of other processes could take them before docker binds them.
func freePortRange(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		first := 20000 + rand.IntN(12000)
		var ls []net.Listener
		for p := first; p < first+n; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == n {
			return first
		}
	}
	t.Fatalf("no %d free consecutive ports", n)
	return 0
}

// run runs a command in the repository root and returns its stdout; it fails
// the test on an error.
func (c *compose) run(name string, args ...string) string {
	c.t.Helper()
	out, err := c.try(name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (c *compose) try(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// do runs the compose command of the project with args.
func (c *compose) do(args ...string) string {
	c.t.Helper()
	return c.run(c.argv[0], append(append(c.argv[1:], "-p", c.project), args...)...)
}

// containers lists the project's container IDs (every state), of service
// when it is not empty.
func (c *compose) containers(service string) []string {
	c.t.Helper()
	args := []string{"ps", "-a", "-q", "--filter", "label=com.docker.compose.project=" + c.project}
	if service != "" {
		args = append(args, "--filter", "label=com.docker.compose.service="+service)
	}
	return strings.Fields(c.run("docker", args...))
}

// url is the host address of a container's published port 8080.
func (c *compose) url(container string) string {
	c.t.Helper()
	out := strings.TrimSpace(c.run("docker", "port", container, "8080"))
	return "http://" + strings.Fields(out)[0]
}

// workerStatus reads one worker container's /status through its published
// port: its own shards and the fleet.
func workerStatus(url string) (me worker.Status, fleet []worker.Status, err error) {
	resp, err := http.Get(url + "/status")
	if err != nil {
		return me, nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Worker worker.Status   `json:"worker"`
		Fleet  []worker.Status `json:"fleet"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.Worker, body.Fleet, err
}

// TestComposeFleet builds the image from the unmodified Dockerfile (on the
// offline stand-in base images of scripts/docker-standins.sh) and runs
// docker-compose.yml's sim profile for real: every shard READY, then a
// `docker stop` of one worker and a `docker kill` (SIGKILL) of another, each
// of whose shards the others RESUME without an IDENTIFY; then `down -v`
// leaves nothing behind. Needs a Docker engine (see needDocker).
func TestComposeFleet(t *testing.T) {
	c := newCompose(t, needDocker(t))
	start := time.Now()
	c.run("bash", "scripts/docker-standins.sh")
	t.Logf("stand-in base images: %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	c.do("--profile", "sim", "build")
	t.Logf("build: %v", time.Since(start).Round(time.Millisecond))

	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.try(c.argv[0], append(append(c.argv[1:], "-p", c.project), "--profile", "sim", "logs", "--no-color", "--tail", "30")...)
			t.Logf("--- compose logs ---\n%s", out)
		}
		if out, err := c.try(c.argv[0], append(append(c.argv[1:], "-p", c.project), "--profile", "sim", "down", "-v", "--remove-orphans", "-t", "5")...); err != nil {
			t.Errorf("down: %v\n%s", err, out)
		}
	})
	c.publishOnFreePorts()
	start = time.Now()
	c.do("--profile", "sim", "up", "-d")
	fk := &fake{url: c.url(c.containers("fakediscord")[0])}
	workers := c.containers("worker-sim")
	if len(workers) != 3 {
		t.Fatalf("%d worker-sim containers, want 3", len(workers))
	}
	urls := map[string]string{} // container -> its /status base URL
	for _, w := range workers {
		urls[w] = c.url(w)
	}
	// shardsOf polls until every shard is READY on the running workers, as
	// they and the fake both see it, and returns each one's shard count.
	shardsOf := func(what string, running []string) map[string]int {
		var owned map[string]int
		pollEvery(t, what, 90*time.Second, 100*time.Millisecond, func() bool {
			st := fk.stats(t)
			if st.LiveSessions != simShards || st.Connections != simShards {
				return false
			}
			owned = map[string]int{}
			ready := 0
			for _, w := range running {
				me, _, err := workerStatus(urls[w])
				if err != nil {
					return false
				}
				for _, s := range me.Shards {
					if s.Status == "ready" {
						ready++
						owned[w]++
					}
				}
			}
			return ready == simShards
		})
		return owned
	}
	owned := shardsOf("every shard READY", workers)
	t.Logf("up -> all %d shards READY: %v (shards per worker %v)", simShards, time.Since(start).Round(time.Millisecond), owned)
	if st := fk.stats(t); st.Identifies != simShards {
		t.Fatalf("%d IDENTIFYs for %d shards: %+v", st.Identifies, simShards, st)
	}
	// Their healthcheck is `worker health` inside the shell-less image.
	pollEvery(t, "every worker container healthy", 30*time.Second, 500*time.Millisecond, func() bool {
		out := c.run("docker", append([]string{"inspect", "-f", "{{.State.Health.Status}}"}, workers...)...)
		return strings.Count(out, "healthy") == len(workers) && !strings.Contains(out, "unhealthy")
	})

	// handOff stops victim with how (stop or kill) and waits until its shards
	// are RESUMEd by the others, with no new IDENTIFY.
	handOff := func(how, victim string, running []string) []string {
		before := fk.stats(t)
		start := time.Now()
		c.run("docker", how, victim)
		rest := make([]string, 0, len(running)-1)
		for _, w := range running {
			if w != victim {
				rest = append(rest, w)
			}
		}
		shardsOf("the others to take over after docker "+how, rest)
		after := fk.stats(t)
		t.Logf("docker %s -> its %d shards RESUMEd elsewhere: %v", how, owned[victim], time.Since(start).Round(time.Millisecond))
		if after.Identifies != before.Identifies || after.Resumes < before.Resumes+owned[victim] {
			t.Fatalf("docker %s of a worker with %d shards: IDENTIFYs %d -> %d, RESUMEs %d -> %d; want no IDENTIFY, a RESUME each",
				how, owned[victim], before.Identifies, after.Identifies, before.Resumes, after.Resumes)
		}
		return rest
	}
	busiest := func(among []string) string {
		best := among[0]
		for _, w := range among {
			if owned[w] > owned[best] {
				best = w
			}
		}
		return best
	}
	running := handOff("stop", busiest(workers), workers)
	owned = shardsOf("every shard READY", running)
	handOff("kill", busiest(running), running)
	(&fleet{t: t, fake: fk}).checkInvariants()

	start = time.Now()
	c.do("--profile", "sim", "down", "-v", "-t", "5")
	t.Logf("down -v: %v", time.Since(start).Round(time.Millisecond))
	if left := c.containers(""); len(left) != 0 {
		t.Errorf("after down -v, containers of the project remain: %v", left)
	}
	if vols := strings.Fields(c.run("docker", "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+c.project)); len(vols) != 0 {
		t.Errorf("after down -v, volumes of the project remain: %v", vols)
	}
}
