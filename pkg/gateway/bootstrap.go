package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// dialURL returns the URL for the next connection, with the query Discord
// requires (reference §3): the session's resume_gateway_url when resuming,
// else the bootstrap URL (Config.URL, or GET {APIURL}/gateway, asked once and
// cached). fromREST reports that the URL came from the cache, so a failed
// dial can drop it.
func (g *gatewayImpl) dialURL(ctx context.Context, resume bool) (u string, fromREST bool, err error) {
	base := ""
	if resume {
		base = g.State().ResumeURL
	}
	if base == "" {
		base, fromREST, err = g.bootstrapURL(ctx)
		if err != nil {
			return "", false, err
		}
	}
	u, err = withGatewayQuery(base, g.cfg.Compression)
	return u, fromREST && !resume, err
}

// withGatewayQuery sets v, encoding and compress on a gateway URL. A resume
// URL gets the same query as the bootstrap one.
func withGatewayQuery(base string, c Compression) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("gateway url %q: %w", base, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return "", fmt.Errorf("gateway url %q: scheme must be ws or wss", base)
	}
	q := u.Query()
	q.Set("v", strconv.Itoa(Version))
	q.Set("encoding", "json")
	q.Del("compress")
	if c == CompressionZlibStream || c == CompressionZstdStream {
		q.Set("compress", string(c))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func (g *gatewayImpl) bootstrapURL(ctx context.Context) (string, bool, error) {
	if g.cfg.URL != "" {
		return g.cfg.URL, false, nil
	}
	g.mu.Lock()
	cached := g.bootstrap
	g.mu.Unlock()
	if cached != "" {
		return cached, true, nil
	}
	u, err := fetchGatewayURL(ctx, g.cfg.HTTPClient, g.cfg.APIURL)
	if err != nil {
		return "", false, err
	}
	g.mu.Lock()
	g.bootstrap = u
	g.mu.Unlock()
	return u, true, nil
}

func (g *gatewayImpl) forgetBootstrap() {
	g.mu.Lock()
	g.bootstrap = ""
	g.mu.Unlock()
}

// fetchGatewayURL asks GET {apiURL}/gateway, which needs no token.
func fetchGatewayURL(ctx context.Context, client *http.Client, apiURL string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/gateway", nil)
	if err != nil {
		return "", fmt.Errorf("get gateway url: %w", err)
	}
	req.Header.Set("User-Agent", UserAgent)
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("get gateway url: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("get gateway url: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("get gateway url: %w", &HTTPError{Status: resp.StatusCode})
	}
	var gw struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(body, &gw); err != nil {
		return "", fmt.Errorf("get gateway url: decode: %w", err)
	}
	if gw.URL == "" {
		return "", fmt.Errorf("get gateway url: empty url in response")
	}
	return gw.URL, nil
}

// redactURL drops the query of a URL for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid url)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
