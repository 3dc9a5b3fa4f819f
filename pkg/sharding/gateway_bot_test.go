package sharding

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// restStub answers /api/v10/gateway/bot like Discord: 401 without the right
// "Bot <token>" header, else the given status and body.
func restStub(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v10/gateway/bot" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bot "+secretToken {
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
	srv := restStub(t, 200, `{"url":"wss://gw.example","shards":9,"session_start_limit":{"total":1000,"remaining":999,"reset_after":14400000,"max_concurrency":4}}`)
	gb, err := FetchGatewayBot(t.Context(), srv.Client(), srv.URL+"/api/v10", secretToken)
	if err != nil {
		t.Fatal(err)
	}
	if gb.URL != "wss://gw.example" || gb.Shards != 9 || gb.SessionStartLimit.MaxConcurrency != 4 ||
		gb.SessionStartLimit.Remaining != 999 || gb.SessionStartLimit.ResetAfterDuration().Hours() != 4 {
		t.Fatalf("gateway/bot = %+v", gb)
	}
	// A trailing slash on the base is fine.
	if _, err := FetchGatewayBot(t.Context(), srv.Client(), srv.URL+"/api/v10/", secretToken); err != nil {
		t.Fatal(err)
	}
}

func TestFetchGatewayBotErrors(t *testing.T) {
	tests := []struct {
		name, token string
		status      int
		body        string
		check       func(error) bool
		want        string
	}{
		{"401", "wrong-" + secretToken, 200, "", func(err error) bool { return errors.Is(err, ErrUnauthorized) }, "401"},
		{"429", secretToken, 429, `{"message":"You are being rate limited.","retry_after":1.5,"global":true}`,
			func(err error) bool {
				var ge *GatewayBotError
				return errors.As(err, &ge) && ge.StatusCode == 429 && ge.RetryAfter == 1.5
			}, "retry after"},
		{"500 text", secretToken, 500, "oops " + secretToken, func(err error) bool {
			var ge *GatewayBotError
			return errors.As(err, &ge) && ge.StatusCode == 500
		}, "oops [token]"},
		{"no shards", secretToken, 200, `{"url":"x","shards":0,"session_start_limit":{"max_concurrency":1}}`,
			func(error) bool { return true }, "field shards"},
		{"no max_concurrency", secretToken, 200, `{"url":"x","shards":2,"session_start_limit":{}}`,
			func(error) bool { return true }, "max_concurrency"},
		{"bad json", secretToken, 200, `{"shards":`, func(error) bool { return true }, "decode"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := restStub(t, tc.status, tc.body)
			_, err := FetchGatewayBot(t.Context(), srv.Client(), srv.URL+"/api/v10", tc.token)
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Fatalf("error holds the token: %v", err)
			}
		})
	}
}

// ShardCount 0 asks /gateway/bot at the first open; a 401 comes back as an
// error of Open, never with the token.
func TestManagerDiscoveryUnauthorized(t *testing.T) {
	srv := restStub(t, 200, `{}`)
	m, err := NewFleet("wrong-"+secretToken, nil, WithAPIURL(srv.URL+"/api/v10"), WithHTTPClient(srv.Client()),
		WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(t.Context())
	err = m.OpenAll(t.Context())
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), secretToken) {
		t.Fatalf("OpenAll = %v, want ErrUnauthorized without the token", err)
	}
	if !errors.Is(m.LastOpenError(), ErrUnauthorized) {
		t.Fatalf("LastOpenError = %v", m.LastOpenError())
	}
	if err := m.OpenShard(t.Context(), 0); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("OpenShard = %v", err)
	}
}
