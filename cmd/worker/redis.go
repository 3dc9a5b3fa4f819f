package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisTarget is a parsed REDIS_URL: exactly one of its option sets is non-nil.
type redisTarget struct {
	simple   *redis.Options
	cluster  *redis.ClusterOptions
	failover *redis.FailoverOptions
}

// Kind names the deployment: "single", "cluster" or "sentinel".
func (t redisTarget) Kind() string {
	switch {
	case t.cluster != nil:
		return "cluster"
	case t.failover != nil:
		return "sentinel"
	}
	return "single"
}

// newClient builds the client. Every kind is a redis.UniversalClient, the only
// type the rest of the worker depends on.
func (t redisTarget) newClient() redis.UniversalClient {
	switch {
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster)
	case t.failover != nil:
		return redis.NewFailoverClient(t.failover)
	}
	return redis.NewClient(t.simple)
}

// parseRedisURL understands the forms listed in `worker -h`:
//
//	redis:// and rediss://                      one server (TLS for rediss)
//	redis+sentinel:// and rediss+sentinel://    Sentinel, ?master_name= required
//	redis+cluster:// and rediss+cluster://      Cluster
//	redis://h1:p1,h2:p2 or cluster=true         Cluster
//
// Errors never quote the URL (it may hold a password).
func parseRedisURL(raw string, cluster bool) (redisTarget, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return redisTarget{}, errors.New("want a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL")
	}
	base, variant, _ := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" {
		return redisTarget{}, fmt.Errorf("unknown scheme %q", scheme)
	}
	// Several comma-separated hosts become the addr= list go-redis understands.
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	hosts := rest[:hostEnd]
	userinfo := ""
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		userinfo, hosts = hosts[:at+1], hosts[at+1:]
	}
	addrs := strings.Split(hosts, ",")
	tail := rest[hostEnd:]
	if len(addrs) > 1 {
		extra := url.Values{}
		for _, a := range addrs[1:] {
			extra.Add("addr", a)
		}
		sep := "?"
		if strings.Contains(tail, "?") {
			sep = "&"
		}
		tail += sep + extra.Encode()
	}
	normal := base + "://" + userinfo + addrs[0] + tail
	switch {
	case variant == "sentinel":
		o, err := redis.ParseFailoverURL(normal)
		if err != nil {
			return redisTarget{}, cleanErr(err)
		}
		if o.MasterName == "" {
			return redisTarget{}, errors.New("sentinel URL needs ?master_name=")
		}
		return redisTarget{failover: o}, nil
	case variant == "cluster" || cluster || len(addrs) > 1:
		o, err := redis.ParseClusterURL(normal)
		if err != nil {
			return redisTarget{}, cleanErr(err)
		}
		return redisTarget{cluster: o}, nil
	case variant != "":
		return redisTarget{}, fmt.Errorf("unknown scheme %q", scheme)
	}
	o, err := redis.ParseURL(normal)
	if err != nil {
		return redisTarget{}, cleanErr(err)
	}
	return redisTarget{simple: o}, nil
}

// cleanErr drops url.Error's copy of the URL, which may hold a password.
func cleanErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// explainRedisErr says in plain words what an authentication refusal means
// (Redis's own text, WRONGPASS/NOAUTH, is kept and never holds the password).
func explainRedisErr(err error) error {
	if redis.IsAuthError(err) {
		return fmt.Errorf("authentication failed: check the user and password in REDIS_URL: %w", err)
	}
	return err
}
