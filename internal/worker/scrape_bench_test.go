package worker

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BenchmarkScrape serves /metrics of 1000 idle zlib-stream shards, gzipped
// as Prometheus asks, through Registry and through Gatherer (what
// cmd/worker serves), and reports the bytes the process allocated per
// shard per scrape: the fake Discord runs in the same process, so its
// heartbeats count too, alike for both.
func BenchmarkScrape(b *testing.B) {
	const shards = 1000
	w := startIdleWorker(b, shards)
	defer w.stop(b)
	// Not a condition: past the open's transients and the 5 s after which a
	// quiet zlib-stream connection gives back its decoder.
	time.Sleep(7 * time.Second)
	for _, g := range []struct {
		name string
		g    prometheus.Gatherer
	}{{"Registry", w.w.Registry()}, {"Gatherer", w.w.Gatherer()}} {
		b.Run(g.name, func(b *testing.B) {
			hd := promhttp.HandlerFor(g.g, promhttp.HandlerOpts{})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				hd.ServeHTTP(discardResponse{http.Header{}}, req)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/shards, "B/shard/scrape")
		})
	}
}

type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header         { return d.h }
func (d discardResponse) Write(p []byte) (int, error) { return io.Discard.Write(p) }
func (d discardResponse) WriteHeader(int)             {}
