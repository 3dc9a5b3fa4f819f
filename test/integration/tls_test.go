package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

// A worker joins a fleet over rediss:// on a redis-server that requires a
// client certificate from a private CA (tls-auth-clients yes), given by the
// REDIS_TLS_* settings: every shard READY, every event in the stream, and
// `worker status` reads the fleet the same way. Without the client
// certificate, the worker exits at start naming the TLS settings.
func TestTLSWorkerWithPrivateCAAndClientCert(t *testing.T) {
	t.Parallel() // own redis-server, fake and workers: independent of every other test
	needBinaries(t)
	files := redistest.WriteTLSFiles(t)
	srv := redistest.StartTLS(t, files)
	f := &fleet{t: t, redis: srv.Server, client: srv.Client(t), fake: startFake(t, 2, 100), shards: 2,
		token: "itest-token", workers: map[string]*proc{}}
	tlsEnv := []string{"REDIS_URL=" + srv.TLSURL(), "REDIS_TLS_CA_FILE=" + files.CA,
		"REDIS_TLS_CERT_FILE=" + files.ClientCert, "REDIS_TLS_KEY_FILE=" + files.ClientKey}
	f.startWorkerWith("w-tls", tlsEnv...)
	f.waitAllReady("every shard READY over TLS")
	f.checkStream()
	status, code := runWorkerCmd(t, 10*time.Second, append(tlsEnv, "KEY_PREFIX="+prefix), "status")
	if code != 0 || strings.Count(status, "ready") != 2 {
		t.Errorf("worker status over TLS: exit %d\n%s", code, status)
	}

	t.Run("without the client certificate", func(t *testing.T) {
		env := append(f.workerEnv("w-nocert"), tlsEnv[:2]...)
		out, code := runWorkerCmd(t, 20*time.Second, env)
		if code == 0 || !strings.Contains(out, "TLS handshake failed") || !strings.Contains(out, "REDIS_TLS_CERT_FILE") {
			t.Errorf("worker without a client certificate: exit %d, want a failure naming the TLS settings:\n%s", code, lastLines(out, 10))
		}
	})
}
