package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMembersBotExample runs examples/membersbot against a fleet: a
// MESSAGE_CREATE "!members" from the fake reaches it through its consumer
// group; it requests the guild's members (op 8 on the guild's shard, answered
// through the stream) and sets the fleet's presence (op 3 on every shard).
func TestMembersBotExample(t *testing.T) {
	const count = 2
	f := newFleet(t, count, 0)
	args := []string{"build", "-o", filepath.Join(binDir, "membersbot")}
	if raceBuild {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "github.com/shardfleet/shardfleet/examples/membersbot")...).CombinedOutput(); err != nil {
		t.Fatalf("build examples/membersbot: %v\n%s", err, out)
	}
	f.startWorker("w1")
	f.waitAllReady("every shard READY")
	bot := startProc(t, "membersbot", []string{"REDIS_URL=" + f.redis.URL(), "KEY_PREFIX=" + prefix, "CONSUMER=c1"}, "membersbot")
	poll(t, "the bot to join its consumer group", 10*time.Second, func() bool {
		return linesWith(bot, "reading the fleet's events") == 1
	})
	g := guildOf(t, f.fake, 1, count)
	body := fmt.Sprintf(`{"t":"MESSAGE_CREATE","guild_id":"%s","d":{"guild_id":"%s","content":"!members","author":{"username":"ann"}}}`, g, g)
	resp, err := http.Post(f.fake.url+"/_fake/dispatch", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	poll(t, "the bot's op 8 and op 3 at the fake", 20*time.Second, func() bool {
		recs := f.fake.commands(t)
		return len(commandsWith(recs, `"query":"ann"`)) == 1 && len(commandsWith(recs, "0 members like ann")) == count
	})
	if r := commandsWith(f.fake.commands(t), `"query":"ann"`)[0]; r.ShardID != 1 || r.ShardCount != count {
		t.Errorf("op 8 went to shard %d/%d, want the guild's 1/%d", r.ShardID, r.ShardCount, count)
	}
	poll(t, "the bot to log its answer", 10*time.Second, func() bool { return linesWith(bot, "answered") == 1 })
	if strings.Contains(bot.out.String(), "level=WARN") {
		t.Errorf("the bot warned:\n%s", bot.out.String())
	}
}
