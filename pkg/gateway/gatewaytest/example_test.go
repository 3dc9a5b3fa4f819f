package gatewaytest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// A test starts a fake, points its bot at APIURL() (or GatewayURL()), drives
// chaos and reads the recorded invariants.
func ExampleNewServer() {
	s := gatewaytest.NewServer(
		gatewaytest.WithShards(2),
		gatewaytest.WithGuilds(10),
		gatewaytest.WithIdentifyWindow(50*time.Millisecond),
		gatewaytest.WithHeartbeatInterval(500*time.Millisecond),
	)
	defer s.Close()

	req, _ := http.NewRequest(http.MethodGet, s.APIURL()+"/gateway/bot", nil)
	req.Header.Set("Authorization", "Bot "+s.Token())
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var bot struct {
		Shards int `json:"shards"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&bot)
	fmt.Println("recommended shards:", bot.Shards)

	// ... run the bot's shards against s.GatewayURL() here ...

	st := s.Stats()
	fmt.Println("identify violations:", st.IdentifyViolations, "duplicate sessions:", st.DuplicateSessions)
	// Output:
	// recommended shards: 2
	// identify violations: 0 duplicate sessions: 0
}
