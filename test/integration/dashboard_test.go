package integration

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// metricName matches the metric names a dashboard query can use: the
// worker's own (shardfleet_) and its Go runtime and process collectors'.
var metricName = regexp.MustCompile(`\b(?:shardfleet|go|process)_[a-zA-Z0-9_]+`)

// dashboardExprs returns every query of the Grafana dashboard at path, rows'
// nested panels included.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var dash struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s does not parse: %v", path, err)
	}
	var exprs []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	return exprs
}

// TestDashboardMetricsExist: every query of deploy/grafana's dashboard names
// metrics a live fleet worker really exports on /metrics, so the dashboard
// cannot silently rot when a metric is renamed or removed.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel() // own redis-server, fake and worker
	exprs := dashboardExprs(t, "../../deploy/grafana/dashboards/shardfleet.json")
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d queries: nothing to check", len(exprs))
	}
	f := newFleet(t, 2, 50)
	w := f.startWorker("w1")
	f.waitAllReady("every shard READY")
	// The exposition's sample names: histograms as _bucket, _sum, _count.
	exported := map[string]bool{}
	for _, line := range strings.Split(httpText(t, "http://"+envValue(w.cmd.Env, "HTTP_ADDR")+"/metrics"), "\n") {
		if name, _, _ := strings.Cut(line, " "); name != "" && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			exported[name] = true
		}
	}
	if !exported["shardfleet_shard_ready"] {
		t.Fatalf("/metrics lacks the per-shard series with every shard ready: nothing to check against")
	}
	for _, expr := range exprs {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("query %q names no shardfleet_, go_ or process_ metric", expr)
		}
		for _, name := range names {
			if !exported[name] {
				t.Errorf("query %q: the worker does not export %s", expr, name)
			}
		}
	}
}
