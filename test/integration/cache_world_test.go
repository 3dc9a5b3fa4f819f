package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/cache"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// The cache's end-to-end evidence (issue 11): the fake keeps a world worth
// caching and its ground truth (GET /_fake/state); the workers keep every
// kind; `worker cache dump` must equal the truth field by field.

// cacheMessages is how many messages per channel both sides keep.
const cacheMessages = 3

// cacheWorldFlags size every guild of the fake's world: every kind present.
var cacheWorldFlags = []string{"-world-seed", "11", "-channels-per-guild", "4", "-threads-per-guild", "1",
	"-roles-per-guild", "2", "-emojis-per-guild", "2", "-stickers-per-guild", "1", "-members-per-guild", "6",
	"-voice-per-guild", "2", "-presences-per-guild", "3", "-messages-per-channel", fmt.Sprint(cacheMessages)}

// cacheSettings make the workers keep every kind, messages included.
var cacheSettings = []string{"CACHE=" + cache.KindNames(), fmt.Sprintf("CACHE_MESSAGES=%d", cacheMessages)}

// change applies one world change through POST /_fake/world/<kind> and
// returns the object it created or changed.
func (f *fake) change(t testing.TB, kind gatewaytest.ChangeKind, ch gatewaytest.Change) gatewaytest.Object {
	t.Helper()
	body, _ := json.Marshal(ch)
	resp, err := http.Post(f.url+"/_fake/world/"+string(kind), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /_fake/world/%s: %v", kind, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out struct{ Object gatewaytest.Object }
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil {
		t.Fatalf("POST /_fake/world/%s %s: %s %s", kind, body, resp.Status, b)
	}
	return out.Object
}

// cacheDiff compares `worker cache dump` with the fake's GET /_fake/state
// for kinds (statediff's rules); it returns the guilds compared (the
// truth's) and the differences.
func (f *fleet) cacheDiff(kinds cache.Kinds) (int, []string) {
	f.t.Helper()
	var truth json.RawMessage
	f.fake.get(f.t, "/_fake/state", &truth)
	out, code := f.workerCLI("cache", "dump")
	if code != 0 {
		f.t.Fatalf("worker cache dump: exit %d: %s", code, out)
	}
	diffs, err := cache.Diff(truth, []byte(out), kinds)
	if err != nil {
		f.t.Fatalf("compare the cache with the truth: %v", err)
	}
	var st struct{ Guilds map[string]json.RawMessage }
	_ = json.Unmarshal(truth, &st)
	return len(st.Guilds), diffs
}

// matchCache polls cacheDiff until the cache equals the fake's truth for
// kinds, or timeout passes; it returns the guilds compared and the last
// differences (none: equal).
func (f *fleet) matchCache(kinds cache.Kinds, timeout time.Duration) (int, []string) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, diffs := f.cacheDiff(kinds)
		if len(diffs) == 0 || time.Now().After(deadline) {
			return n, diffs
		}
		time.Sleep(100 * time.Millisecond) // polling a condition, with a deadline
	}
}

// waitCacheMatchesFake is matchCache that fails the test naming the
// differences; it returns the guilds compared.
func (f *fleet) waitCacheMatchesFake(what string, kinds cache.Kinds) int {
	f.t.Helper()
	n, diffs := f.matchCache(kinds, 15*time.Second)
	if len(diffs) > 0 {
		f.t.Fatalf("%s: the cache differs from /_fake/state in %d places after 15s:\n%s", what, len(diffs),
			strings.Join(diffs[:min(len(diffs), 20)], "\n"))
	}
	return n
}
