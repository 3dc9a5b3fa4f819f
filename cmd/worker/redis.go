package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardfleet/shardfleet/internal/failover"
	"github.com/shardfleet/shardfleet/pkg/gateway"
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
// type the rest of the worker depends on. A Sentinel client follows the
// first sentinel that reports a switch (internal/failover), and logs each
// switch it acts on to log (nil: silently).
func (t redisTarget) newClient(log *slog.Logger) redis.UniversalClient {
	switch {
	case t.cluster != nil:
		return redis.NewClusterClient(t.cluster)
	case t.failover != nil:
		return failover.NewClient(t.failover, log)
	}
	return redis.NewClient(t.simple)
}

// tlsConfig points at the TLS configuration of whichever option set is in
// use; it holds nil for a redis:// (plain text) URL.
func (t redisTarget) tlsConfig() **tls.Config {
	switch {
	case t.cluster != nil:
		return &t.cluster.TLSConfig
	case t.failover != nil:
		return &t.failover.TLSConfig
	}
	return &t.simple.TLSConfig
}

// redisTLS is the REDIS_TLS_* settings: a private CA, a client certificate
// (which Redis asks for by default: tls-auth-clients yes) and the name to
// verify the server's certificate against.
type redisTLS struct {
	CAFile     string // REDIS_TLS_CA_FILE: PEM; when set, the only CAs trusted
	CertFile   string // REDIS_TLS_CERT_FILE: PEM client certificate (chain)
	KeyFile    string // REDIS_TLS_KEY_FILE: PEM private key of CertFile
	ServerName string // REDIS_TLS_SERVER_NAME; default: the host of REDIS_URL
}

// The setting names as errors print them.
const (
	settingRedisURL    = "REDIS_URL (-redis-url)"
	settingTLSCA       = "REDIS_TLS_CA_FILE (-redis-tls-ca-file)"
	settingTLSCert     = "REDIS_TLS_CERT_FILE (-redis-tls-cert-file)"
	settingTLSKey      = "REDIS_TLS_KEY_FILE (-redis-tls-key-file)"
	settingTLSServName = "REDIS_TLS_SERVER_NAME (-redis-tls-server-name)"
)

// newRedisTarget parses REDIS_URL and applies the REDIS_TLS_* settings to
// whichever client kind it names. The worker and `worker status` both build
// their client through it. Errors are *gateway.ConfigError naming the setting.
func newRedisTarget(raw RedisURL, cluster bool, tl redisTLS) (redisTarget, error) {
	t, err := parseRedisURL(string(raw), cluster)
	if err != nil {
		return redisTarget{}, gateway.NewSettingError(settingRedisURL, raw.String(), err.Error())
	}
	cfg := t.tlsConfig()
	if *cfg == nil {
		if name, value := tl.firstSet(); name != "" {
			return redisTarget{}, gateway.NewSettingError(name, value,
				"applies only to TLS: REDIS_URL must start with rediss://, rediss+sentinel:// or rediss+cluster://")
		}
		return t, nil
	}
	if err := tl.apply(*cfg); err != nil {
		return redisTarget{}, err
	}
	return t, nil
}

// firstSet names the first REDIS_TLS_* setting given, and its value; "" when none is.
func (tl redisTLS) firstSet() (setting, value string) {
	for _, s := range [][2]string{{settingTLSCA, tl.CAFile}, {settingTLSCert, tl.CertFile},
		{settingTLSKey, tl.KeyFile}, {settingTLSServName, tl.ServerName}} {
		if s[1] != "" {
			return s[0], s[1]
		}
	}
	return "", ""
}

// apply loads the files into c, go-redis's TLS configuration of a rediss URL.
func (tl redisTLS) apply(c *tls.Config) error {
	if tl.ServerName != "" {
		c.ServerName = tl.ServerName
	}
	if tl.CAFile != "" {
		pem, err := os.ReadFile(tl.CAFile)
		if err != nil {
			return gateway.NewSettingError(settingTLSCA, tl.CAFile, "want a readable PEM file: "+err.Error())
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return gateway.NewSettingError(settingTLSCA, tl.CAFile, "holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	switch {
	case tl.CertFile == "" && tl.KeyFile == "":
		return nil
	case tl.KeyFile == "":
		return gateway.NewSettingError(settingTLSKey, "", "required with REDIS_TLS_CERT_FILE: set both or neither")
	case tl.CertFile == "":
		return gateway.NewSettingError(settingTLSCert, "", "required with REDIS_TLS_KEY_FILE: set both or neither")
	}
	pair, err := tls.LoadX509KeyPair(tl.CertFile, tl.KeyFile)
	if err != nil {
		return gateway.NewSettingError(settingTLSCert+" / "+settingTLSKey, tl.CertFile,
			"want a readable PEM certificate and its private key: "+err.Error())
	}
	c.Certificates = []tls.Certificate{pair}
	return nil
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
		// go-redis sends no AUTH without a password, so the connection
		// would run as Redis's default user, silently, whatever user is named.
		if user, pass, _ := strings.Cut(strings.TrimSuffix(userinfo, "@"), ":"); user != "" && pass == "" {
			return redisTarget{}, errors.New("names a user but no password: want redis://user:password@host (the connection would run as Redis's default user)")
		}
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
	var refused *net.OpError // "remote error" is crypto/tls's alert from the server, e.g. no client certificate
	var verify *tls.CertificateVerificationError
	if (errors.As(err, &refused) && refused.Op == "remote error") || errors.As(err, &verify) {
		return fmt.Errorf("TLS handshake failed: check REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE, REDIS_TLS_SERVER_NAME: %w", err)
	}
	return err
}

// explain is explainRedisErr, and for a refusal it does not recognise (a
// server that answers every command with an error and hangs up, as protected
// mode does with "-DENIED ...", surfaces in go-redis as "write: broken pipe")
// it asks the server once, directly, and adds its reply.
func (t redisTarget) explain(ctx context.Context, err error) error {
	if explained := explainRedisErr(err); explained != err {
		return explained
	}
	reply := t.serverReply(ctx)
	if !strings.HasPrefix(reply, "-") {
		return err
	}
	return fmt.Errorf("the server refused the worker, replying %q: check REDIS_URL (address, user, password) and the server's bind, protected-mode and ACL settings: %w",
		strings.TrimPrefix(reply, "-"), err)
}

// serverReply sends PING on a fresh connection to the first address of the
// target (over TLS when it uses TLS) and returns the first line of the reply,
// or "" when there is none within a second.
func (t redisTarget) serverReply(ctx context.Context) string {
	var addr string
	switch {
	case t.cluster != nil && len(t.cluster.Addrs) > 0:
		addr = t.cluster.Addrs[0]
	case t.failover != nil && len(t.failover.SentinelAddrs) > 0:
		addr = t.failover.SentinelAddrs[0]
	case t.simple != nil:
		addr = t.simple.Addr
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	if cfg := *t.tlsConfig(); cfg != nil {
		tc := tls.Client(conn, cfg)
		if tc.HandshakeContext(ctx) != nil {
			return ""
		}
		conn = tc
	}
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	_, _ = conn.Write([]byte("PING\r\n")) // the server may have answered and closed already
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}
