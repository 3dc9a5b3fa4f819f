package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TLSFiles are PEM files, in a test's temporary directory, of a fresh CA and
// of a server and a client certificate it signed. The server certificate is
// for 127.0.0.1 and localhost.
type TLSFiles struct {
	CA                    string
	ServerCert, ServerKey string
	ClientCert, ClientKey string
}

// WriteTLSFiles generates a CA, a server and a client certificate with
// crypto/x509 (no openssl needed) and writes them as PEM files.
func WriteTLSFiles(t testing.TB) TLSFiles {
	t.Helper()
	dir := t.TempDir()
	caKey, ca := newCert(t, nil, nil, &x509.Certificate{
		Subject: pkix.Name{CommonName: "redistest CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	})
	files := TLSFiles{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, files.CA, "CERTIFICATE", ca.Raw)
	for _, c := range []struct {
		name      string
		cert, key *string
		tmpl      *x509.Certificate
	}{
		{"server", &files.ServerCert, &files.ServerKey, &x509.Certificate{
			Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}},
		{"client", &files.ClientCert, &files.ClientKey, &x509.Certificate{
			Subject: pkix.Name{CommonName: "redistest client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	} {
		c.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		key, cert := newCert(t, ca, caKey, c.tmpl)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		*c.cert, *c.key = filepath.Join(dir, c.name+".pem"), filepath.Join(dir, c.name+"-key.pem")
		writePEM(t, *c.cert, "CERTIFICATE", cert.Raw)
		writePEM(t, *c.key, "PRIVATE KEY", der)
	}
	return files
}

// newCert signs tmpl with parent's key (self-signed when parent is nil).
func newCert(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, tmpl *x509.Certificate) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TLSServer is a redis-server that also serves TLS, requiring a client
// certificate signed by its CA (tls-auth-clients yes, Redis's default). Its
// plain port stays open on 127.0.0.1 for the test's own set-up and checks
// (Server.Client, Do); the code under test is given TLSURL.
type TLSServer struct {
	*Server
	TLSPort int
}

// StartTLS starts a TLS redis-server with files' server certificate and CA,
// and stops it when t ends.
func StartTLS(t testing.TB, files TLSFiles, opts ...Option) *TLSServer {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	tlsOpt := Option{"--tls-port", strconv.Itoa(port), "--tls-cert-file", files.ServerCert,
		"--tls-key-file", files.ServerKey, "--tls-ca-cert-file", files.CA, "--tls-auth-clients", "yes"}
	return &TLSServer{Server: Start(t, append([]Option{tlsOpt}, opts...)...), TLSPort: port}
}

// TLSAddr is host:port of the TLS port.
func (s *TLSServer) TLSAddr() string { return "127.0.0.1:" + strconv.Itoa(s.TLSPort) }

// TLSURL is a rediss:// URL for the TLS port.
func (s *TLSServer) TLSURL() string { return "rediss://" + s.TLSAddr() }
