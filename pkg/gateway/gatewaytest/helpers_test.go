package gatewaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"compress/zlib"

	"github.com/coder/websocket"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor bounds every read in these tests.
const waitFor = 5 * time.Second

// envelope is a received payload.
type envelope struct {
	Op     int             `json:"op"`
	D      json.RawMessage `json:"d"`
	S      *int            `json:"s"`
	T      *string         `json:"t"`
	Binary bool            `json:"-"` // arrived in binary frame(s)
	Frames int             `json:"-"` // websocket messages it took
}

func (e envelope) typ() string {
	if e.T == nil {
		return ""
	}
	return *e.T
}

func (e envelope) seq() int {
	if e.S == nil {
		return -1
	}
	return *e.S
}

// client is a raw gateway client written for these tests (it does not use
// pkg/gateway). It decodes transport compression with reference decoders run
// over the whole concatenated stream, so it checks the stream, not itself.
type client struct {
	t        *testing.T
	ws       *websocket.Conn
	compress string
	stream   []byte // every compressed byte received
	outDone  int    // decompressed bytes already handed out
	frames   [][]byte
}

func startFake(t *testing.T, opts ...Option) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0", opts...)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// dial connects to url (a gateway URL without query) with query.
func dial(t *testing.T, url, query string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url+query, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url+query, err)
	}
	ws.SetReadLimit(-1)
	c := &client{t: t, ws: ws}
	if i := strings.Index(query, "compress="); i >= 0 {
		c.compress = strings.SplitN(query[i+len("compress="):], "&", 2)[0]
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return c
}

const q10 = "?v=10&encoding=json"

// connect dials the fake's gateway and reads HELLO.
func connect(t *testing.T, s *Server) *client {
	t.Helper()
	c := dial(t, s.GatewayURL(), q10)
	if h := c.next(); h.Op != 10 {
		t.Fatalf("first payload op %d, want HELLO (10)", h.Op)
	}
	return c
}

// read returns the next payload, or the error that ended the connection.
func (c *client) read() (envelope, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var env envelope
	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return env, err
		}
		env.Frames++
		var payload []byte
		switch {
		case c.compress == "zlib-stream" || c.compress == "zstd-stream":
			if typ != websocket.MessageBinary {
				c.t.Fatalf("%s frame is text", c.compress)
			}
			c.frames = append(c.frames, b)
			c.stream = append(c.stream, b...)
			if c.compress == "zlib-stream" && !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
				continue
			}
			payload = c.inflateNew()
		case typ == websocket.MessageBinary:
			zr, err := zlib.NewReader(bytes.NewReader(b))
			if err != nil {
				c.t.Fatalf("per-payload zlib: %v", err)
			}
			payload, err = io.ReadAll(zr)
			if err != nil {
				c.t.Fatalf("per-payload zlib: %v", err)
			}
		default:
			payload = b
		}
		env.Binary = typ == websocket.MessageBinary
		if err := json.Unmarshal(payload, &env); err != nil {
			c.t.Fatalf("payload %q: %v", payload, err)
		}
		return env, nil
	}
}

// inflateNew decodes the whole stream so far with a reference decoder and
// returns the output not handed out yet.
func (c *client) inflateNew() []byte {
	var r io.Reader
	switch c.compress {
	case "zlib-stream":
		zr, err := zlib.NewReader(bytes.NewReader(c.stream))
		if err != nil {
			c.t.Fatalf("zlib header: %v", err)
		}
		r = zr
	default:
		zr, err := zstd.NewReader(bytes.NewReader(c.stream))
		if err != nil {
			c.t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		c.t.Fatalf("%s stream: %v (got %d bytes)", c.compress, err, len(out))
	}
	if len(out) <= c.outDone {
		c.t.Fatalf("%s: message decoded to nothing", c.compress)
	}
	p := out[c.outDone:]
	c.outDone = len(out)
	return p
}

func (c *client) next() envelope {
	c.t.Helper()
	env, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return env
}

// nextOp reads the next payload and checks its op (and type, for dispatches).
func (c *client) nextOp(op int, typ string) envelope {
	c.t.Helper()
	env := c.next()
	if env.Op != op || env.typ() != typ {
		c.t.Fatalf("got op %d t %q d %s, want op %d t %q", env.Op, env.typ(), env.D, op, typ)
	}
	return env
}

// expectClose reads until the connection ends and checks the close code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	for {
		env, err := c.read()
		if err == nil {
			if env.Op == 11 || env.Op == 0 {
				continue
			}
			c.t.Fatalf("want close %d, got op %d t %q", code, env.Op, env.typ())
		}
		if got := int(websocket.CloseStatus(err)); got != code {
			c.t.Fatalf("closed with %d (%v), want %d", got, err, code)
		}
		return
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(b)
}

func (c *client) sendRaw(b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) close(code int) {
	_ = c.ws.Close(websocket.StatusCode(code), "")
}

type m = map[string]any

func identifyPayload(token string, shardID, count int, extra m) m {
	d := m{"token": token, "intents": 513, "properties": m{"os": "linux", "browser": "t", "device": "t"},
		"shard": []int{shardID, count}}
	for k, v := range extra {
		d[k] = v
	}
	return m{"op": 2, "d": d}
}

// identify sends IDENTIFY and reads READY and the shard's GUILD_CREATEs.
func (c *client) identify(s *Server, shardID, count int) readyInfo {
	c.t.Helper()
	c.send(identifyPayload(s.Token(), shardID, count, nil))
	env := c.nextOp(0, "READY")
	var r readyInfo
	if err := json.Unmarshal(env.D, &r); err != nil {
		c.t.Fatal(err)
	}
	for range r.Guilds {
		c.nextOp(0, "GUILD_CREATE")
	}
	return r
}

type readyInfo struct {
	V         int    `json:"v"`
	SessionID string `json:"session_id"`
	ResumeURL string `json:"resume_gateway_url"`
	Shard     []int  `json:"shard"`
	Guilds    []struct {
		ID          string `json:"id"`
		Unavailable bool   `json:"unavailable"`
	} `json:"guilds"`
	User struct {
		ID  string `json:"id"`
		Bot bool   `json:"bot"`
	} `json:"user"`
	Application struct {
		ID string `json:"id"`
	} `json:"application"`
}

func resumePayload(token, sessionID string, seq int) m {
	return m{"op": 6, "d": m{"token": token, "session_id": sessionID, "seq": seq}}
}

// poll retries cond until it holds or the deadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url, auth string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: decode: %v", url, err)
		}
	}
	return resp.StatusCode
}

// noKeepAlive leaves no idle connection (and goroutine) behind a test.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: waitFor}

func websocketCloseStatus(err error) int { return int(websocket.CloseStatus(err)) }
