package redislimiter

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shardfleet/shardfleet/internal/redistest"
)

const secretToken = "MTIz.secret-token-value"

func gatewayBotServer(t *testing.T, status int, body string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v10/gateway/bot" || r.Header.Get("Authorization") != "Bot "+secretToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message": "401: Unauthorized", "code": 0}`))
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchGatewayBot(t *testing.T) {
	ok := `{"url":"wss://gateway.discord.gg","shards":9,"session_start_limit":` +
		`{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":16}}`
	srv := gatewayBotServer(t, http.StatusOK, ok)
	ctx := ctxT(t, 5*time.Second)
	g, err := FetchGatewayBot(ctx, srv.Client(), srv.URL+"/api/v10/", secretToken)
	if err != nil {
		t.Fatal(err)
	}
	if g.Shards != 9 || g.SessionStartLimit.MaxConcurrency != 16 || g.SessionStartLimit.Remaining != 999 ||
		g.SessionStartLimit.ResetAfter() != 4*time.Hour {
		t.Fatalf("got %+v", g)
	}

	errorCases := map[string]struct {
		srv   *httptest.Server
		token string
	}{
		"unauthorized": {srv, "wrong-" + secretToken},
		"server error": {gatewayBotServer(t, http.StatusBadGateway, "oops "+secretToken), secretToken},
		"bad json":     {gatewayBotServer(t, http.StatusOK, `{"shards":`), secretToken},
		"bad mc":       {gatewayBotServer(t, http.StatusOK, `{"shards":1,"session_start_limit":{"max_concurrency":0}}`), secretToken},
	}
	for name, tc := range errorCases {
		t.Run(name, func(t *testing.T) {
			_, err := FetchGatewayBot(ctx, tc.srv.Client(), tc.srv.URL+"/api/v10", tc.token)
			if !errors.Is(err, ErrDiscovery) {
				t.Fatalf("got %v, want ErrDiscovery", err)
			}
			if strings.Contains(err.Error(), "secret-token") {
				t.Fatalf("error leaks the token: %v", err)
			}
		})
	}
	var se *StatusError
	_, err = FetchGatewayBot(ctx, srv.Client(), srv.URL+"/api/v10", "nope")
	if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %v, want StatusError 401", err)
	}
	if _, err := FetchGatewayBot(ctx, nil, srv.URL, ""); !errors.Is(err, ErrDiscovery) {
		t.Fatalf("empty token: %v", err)
	}
}

func TestStoreLoadMaxConcurrency(t *testing.T) {
	s := redistest.Start(t)
	c := newClient(t, s.Addr())
	ctx := context.Background()
	if _, err := LoadMaxConcurrency(ctx, c, "fleet"); !errors.Is(err, ErrNoMaxConcurrency) {
		t.Fatalf("nothing stored: got %v, want ErrNoMaxConcurrency", err)
	}
	if err := StoreMaxConcurrency(ctx, c, "fleet", 0); err == nil {
		t.Fatal("stored max_concurrency 0")
	}
	if err := StoreMaxConcurrency(ctx, c, "fleet", 16); err != nil {
		t.Fatal(err)
	}
	if n, err := LoadMaxConcurrency(ctx, c, "{fleet}:"); err != nil || n != 16 {
		t.Fatalf("Load = %d, %v; want 16 (prefix wrapped the same way)", n, err)
	}
}
