package gateway_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/shardfleet/shardfleet/internal/testutil"
	"github.com/shardfleet/shardfleet/pkg/gateway"
	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// TestTokenNeverLogged runs a shard through identify, resume, a protocol
// error, a re-identify and a fatal close with debug logging on, and checks
// that the token appears in no log line and no error.
func TestTokenNeverLogged(t *testing.T) {
	const token = "Bot-SECRET-token-1234567890"
	s := newFake(t, gatewaytest.WithToken(token))
	var logs testutil.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	closes := &closeRecorder{}
	g := gateway.New(token, nil, gateway.WithURL(s.GatewayURL()), gateway.WithLogger(logger),
		gateway.WithReconnectBackoff(gateway.DefaultConfig().ReconnectBackoffMin/100, gateway.DefaultConfig().ReconnectBackoffMin/50),
		gateway.WithCloseHandler(closes.handle))
	defer g.Close(context.Background())
	open(t, g)
	s.SendReconnect(0)
	eventually(t, "resume", func() bool { return okResumes(s) == 1 && g.Status() == gateway.StatusReady })
	s.SendRaw(0, []byte("{garbage"), false)
	eventually(t, "resume after garbage", func() bool { return okResumes(s) == 2 && g.Status() == gateway.StatusReady })
	s.InvalidateSession(0, false)
	eventually(t, "reidentify", func() bool { return len(s.Identifies()) == 2 && g.Status() == gateway.StatusReady })
	s.CloseConnections(0, gateway.CloseAuthenticationFailed, "Authentication failed.")
	eventually(t, "fatal close", func() bool { return len(closes.snapshot()) == 1 })
	if strings.Contains(logs.String(), token) {
		t.Fatal("the token appears in the logs")
	}
	if strings.Contains(closes.snapshot()[0].err.Error(), token) {
		t.Fatal("the token appears in an error")
	}
	if !strings.Contains(logs.String(), "shard_id=0") {
		t.Fatal("logs lack shard_id")
	}
}
