package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/shardfleet/shardfleet/pkg/gateway/gatewaytest"
)

// serve runs the stand-in server until its stdin closes (the parent's exit).
// It prints two URLs on one line: the flood's gateway, and the fake's (empty
// with -shards 0).
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	events := fs.Int("events", 200000, "MESSAGE_CREATE dispatches per flood connection")
	shards := fs.Int("shards", 0, "shards of the gatewaytest fake for idle clients (0: no fake)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: &flood{events: *events, encoded: map[string]*encodedFlood{}}}
	go func() { _ = srv.Serve(ln) }()
	fakeURL := "-"
	if *shards > 0 {
		fake, err := gatewaytest.Listen("127.0.0.1:0", gatewaytest.WithShards(*shards),
			gatewaytest.WithMaxConcurrency(*shards), gatewaytest.WithIdentifyWindow(time.Millisecond),
			gatewaytest.WithSessionStartLimit(1000000, time.Hour))
		if err != nil {
			return err
		}
		fakeURL = fake.GatewayURL()
	}
	fmt.Printf("ws://%s/gateway %s\n", ln.Addr(), fakeURL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// flood serves, on every connection, HELLO, then (after the client's first
// message, its IDENTIFY) READY and events MESSAGE_CREATE dispatches, all
// encoded once per compression and written as pre-framed websocket bytes.
// It never answers heartbeats: a run ends long before the client's second
// heartbeat would miss its ACK.
type flood struct {
	events  int
	mu      sync.Mutex
	encoded map[string]*encodedFlood
}

type encodedFlood struct{ hello, rest []byte }

func (f *flood) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "websocket only", http.StatusBadRequest)
		return
	}
	enc, err := f.encoding(r.URL.Query().Get("compress"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(sum[:]))
	_, _ = brw.Write(enc.hello)
	if brw.Flush() != nil {
		return
	}
	if _, err := brw.ReadByte(); err != nil {
		return
	}
	if _, err := conn.Write(enc.rest); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, brw)
}

func (f *flood) encoding(compress string) (*encodedFlood, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.encoded[compress]; ok {
		return e, nil
	}
	c, err := newCompressor(compress)
	if err != nil {
		return nil, err
	}
	e := &encodedFlood{}
	e.hello = c.frame(nil, []byte(`{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}`))
	e.rest = c.frame(nil, []byte(`{"t":"READY","s":1,"op":0,"d":{"v":10,"user":{"id":"1300000000000000001","username":"bench","discriminator":"0","bot":true},`+
		`"guilds":[],"session_id":"bench-session","resume_gateway_url":"ws://127.0.0.1:1/","shard":[0,1],"application":{"id":"1300000000000000001","flags":0}}}`))
	msg := make([]byte, 0, 2048)
	for i := range f.events {
		s := i + 2
		msg = append(msg[:0], `{"t":"MESSAGE_CREATE","s":`...)
		msg = strconv.AppendInt(msg, int64(s), 10)
		msg = append(msg, `,"op":0,"d":`...)
		msg = append(msg, gatewaytest.MessageCreateData(1300000000000000005, uint64(i))...)
		msg = append(msg, '}')
		e.rest = c.frame(e.rest, msg)
	}
	f.encoded[compress] = e
	return e, nil
}

// compressor turns gateway messages into websocket frames of one
// connection's transport compression.
type compressor struct {
	buf bytes.Buffer
	w   interface {
		io.Writer
		Flush() error
	}
}

func newCompressor(compress string) (*compressor, error) {
	c := &compressor{}
	switch compress {
	case "":
	case "zlib-stream":
		w, err := zlib.NewWriterLevel(&c.buf, zlib.BestSpeed)
		if err != nil {
			return nil, err
		}
		c.w = w
	case "zstd-stream":
		// Like the fake (gatewaytest): fastest level, a 32 KiB window.
		w, err := zstd.NewWriter(&c.buf, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<15), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
		c.w = w
	default:
		return nil, fmt.Errorf("compress=%q: want zlib-stream, zstd-stream or none", compress)
	}
	return c, nil
}

// frame appends msg, compressed and framed as one unmasked websocket
// message, to dst.
func (c *compressor) frame(dst, msg []byte) []byte {
	op := byte(0x1) // text
	if c.w != nil {
		c.buf.Reset()
		_, _ = c.w.Write(msg) // into a bytes.Buffer: cannot fail
		_ = c.w.Flush()
		msg, op = c.buf.Bytes(), 0x2
	}
	dst = append(dst, 0x80|op)
	switch n := len(msg); {
	case n < 126:
		dst = append(dst, byte(n))
	case n < 1<<16:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, msg...)
}
