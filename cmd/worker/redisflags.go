package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/lease"
)

// redisFlags are the settings a subcommand (status, send) needs to reach the
// fleet's Redis, read as the worker reads them: flag, then environment.
type redisFlags struct {
	url     *string
	cluster *bool
	tls     redisTLS
	prefix  *string
}

// addRedisFlags defines the Redis flags on fs, defaulting to env.
func addRedisFlags(fs *flag.FlagSet, env func(string) (string, bool)) *redisFlags {
	get := func(k, def string) string {
		if v, ok := env(k); ok && v != "" {
			return v
		}
		return def
	}
	r := &redisFlags{}
	r.url = fs.String("redis-url", get("REDIS_URL", ""), "Redis of the fleet (env REDIS_URL)")
	clusterEnv, _ := strconv.ParseBool(get("REDIS_CLUSTER", "false")) // as the worker reads it
	r.cluster = fs.Bool("redis-cluster", clusterEnv, "REDIS_URL is a Cluster seed (env REDIS_CLUSTER)")
	fs.StringVar(&r.tls.CAFile, "redis-tls-ca-file", get("REDIS_TLS_CA_FILE", ""), "rediss: PEM file of the CA(s) to trust (env REDIS_TLS_CA_FILE)")
	fs.StringVar(&r.tls.CertFile, "redis-tls-cert-file", get("REDIS_TLS_CERT_FILE", ""), "rediss: PEM client certificate (env REDIS_TLS_CERT_FILE)")
	fs.StringVar(&r.tls.KeyFile, "redis-tls-key-file", get("REDIS_TLS_KEY_FILE", ""), "rediss: PEM private key of the certificate (env REDIS_TLS_KEY_FILE)")
	fs.StringVar(&r.tls.ServerName, "redis-tls-server-name", get("REDIS_TLS_SERVER_NAME", ""), "rediss: name to verify the server against (env REDIS_TLS_SERVER_NAME)")
	r.prefix = fs.String("key-prefix", get("KEY_PREFIX", lease.DefaultPrefix), "key prefix of the fleet (env KEY_PREFIX)")
	return r
}

// client checks the settings and returns the Redis target (to explain a
// refusal with), a client of it and the normalised prefix; the error names
// the setting to fix.
func (r *redisFlags) client() (redisTarget, redis.UniversalClient, string, error) {
	if *r.url == "" {
		return redisTarget{}, nil, "", errors.New("config: REDIS_URL (-redis-url): required")
	}
	norm, err := normalizePrefix(*r.prefix)
	if err != nil {
		return redisTarget{}, nil, "", fmt.Errorf("config: KEY_PREFIX (-key-prefix): %w", err)
	}
	target, err := newRedisTarget(RedisURL(*r.url), *r.cluster, r.tls)
	if err != nil {
		return redisTarget{}, nil, "", err
	}
	return target, target.newClient(nil), norm, nil
}
