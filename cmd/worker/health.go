package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// runHealth is `worker health`: a container healthcheck for images without a
// shell or curl (the distroless image). It GETs this worker's /healthz (or
// /readyz with -ready) on HTTP_ADDR, or any -url, and exits 0 on a 2xx answer,
// 1 otherwise.
func runHealth(args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("worker health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr, ok := env("HTTP_ADDR")
	if !ok {
		addr = ":8080" // the worker's default
	}
	httpAddr := fs.String("http-addr", addr, "the worker's listen address (env HTTP_ADDR)")
	ready := fs.Bool("ready", false, "check /readyz (every owned shard READY) instead of /healthz")
	url := fs.String("url", "", "check this URL instead (e.g. the fake Discord's /_fake/stats)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: worker health [flags]\n\nExits 0 when the worker's /healthz (or /readyz with -ready) answers 2xx, else 1.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code, ok := parseSubcommand(fs, args); !ok {
		return code
	}
	target := *url
	if target == "" {
		path := "/healthz"
		if *ready {
			path = "/readyz"
		}
		base, err := localURL(*httpAddr)
		if err != nil {
			fmt.Fprintln(stderr, "worker health:", err)
			return exitBadArgs
		}
		target = base + path
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "worker health:", gateway.NewSettingError("-timeout", timeout.String(), "want a positive duration such as 2s"))
		return exitBadArgs
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	status, err := probe(ctx, target)
	if err != nil {
		fmt.Fprintln(stderr, "worker health:", err)
		return exitFailed
	}
	fmt.Fprintln(stdout, target+":", status)
	return exitOK
}

// localURL is the http:// base that reaches a server listening on addr from
// the same host: an empty or wildcard host becomes the loopback address.
func localURL(addr string) (string, error) {
	if addr == "" {
		return "", gateway.NewSettingError("HTTP_ADDR (-http-addr)", "", "empty: the HTTP server is off, so there is nothing to check; want host:port or :port")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", gateway.NewSettingError("HTTP_ADDR (-http-addr)", addr, "want host:port or :port")
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// probe fetches url and returns its status line when it is 2xx.
func probe(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return resp.Status, nil
}
