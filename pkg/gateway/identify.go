package gateway

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// identifyData is IDENTIFY's d. It holds the token: never log or wrap it.
type identifyData struct {
	Token          string             `json:"token"`
	Intents        Intents            `json:"intents"`
	Properties     identifyProperties `json:"properties"`
	Compress       bool               `json:"compress,omitempty"`
	LargeThreshold int                `json:"large_threshold,omitempty"`
	Shard          [2]int             `json:"shard"`
	Presence       *PresenceUpdate    `json:"presence,omitempty"`
}

type identifyProperties struct {
	OS      string `json:"os"`
	Browser string `json:"browser"`
	Device  string `json:"device"`
}

// resumeData is RESUME's d. It holds the token: never log or wrap it.
type resumeData struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       int    `json:"seq"`
}

// handshake is the connection's handshake goroutine: it waits for HELLO, then
// sends RESUME, or takes the identify permit and sends IDENTIFY. Running it
// beside the read loop keeps ACKs flowing while the permit is awaited.
func (c *connection) handshake(resume bool) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		c.hello, c.readySig = nil, nil
		c.mu.Unlock()
	}()
	timer := time.NewTimer(c.g.cfg.HelloTimeout)
	defer timer.Stop()
	select {
	case <-c.hello:
	case <-timer.C:
		c.fail(helloTimeoutError(c.g.cfg.HelloTimeout), ActionResume, CloseCodeReconnect, "no hello")
		return
	case <-c.readCtx.Done():
		return
	}
	var err error
	if resume {
		err = c.sendResume()
	} else {
		err = c.identify()
	}
	if err != nil {
		if c.readCtx.Err() == nil {
			c.fail(err, ActionResume, CloseCodeReconnect, "handshake failed")
		}
		return
	}
	c.awaitReady(resume)
}

// awaitReady waits for READY or RESUMED (signalled by the read loop) for at
// most ReadyTimeout, then replaces the connection. op 7/9 and closes end the
// connection through readCtx first.
func (c *connection) awaitReady(resume bool) {
	d := c.g.cfg.ReadyTimeout
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.readySig:
	case <-c.readCtx.Done():
	case <-t.C:
		c.fail(readyTimeoutError(d, resume), ActionResume, CloseCodeReconnect, "no ready")
	}
}

func (c *connection) sendResume() error {
	g := c.g
	g.setStatus(StatusResuming)
	st := g.State()
	payload, err := json.Marshal(outgoing{Op: OpResume, D: resumeData{Token: g.token, SessionID: st.SessionID, Seq: st.Sequence}})
	if err != nil {
		return fmt.Errorf("encode RESUME: %w", err)
	}
	g.log.Debug("resuming", slog.String("session_id", st.SessionID), slog.Int("seq", st.Sequence))
	if err := c.write(c.readCtx, payload, true); err != nil {
		return fmt.Errorf("send RESUME: %w", err)
	}
	return nil
}

// identify takes the identify permit and sends IDENTIFY. The permit is
// released exactly once, after the write, whether it worked or not.
func (c *connection) identify() error {
	g := c.g
	g.setStatus(StatusIdentifying)
	payload, err := c.identifyPayload()
	if err != nil {
		return err
	}
	if err := g.limiter.WaitBucket(c.readCtx, g.cfg.ShardID); err != nil {
		return fmt.Errorf("identify permit: %w", err)
	}
	defer g.limiter.UnlockBucket(g.cfg.ShardID)
	g.log.Debug("identifying")
	if err := c.write(c.readCtx, payload, true); err != nil {
		return fmt.Errorf("send IDENTIFY: %w", err)
	}
	g.casStatus(StatusIdentifying, StatusWaitingForReady)
	return nil
}

func (c *connection) identifyPayload() ([]byte, error) {
	g := c.g
	cfg := &g.cfg
	d := identifyData{
		Token:          g.token,
		Intents:        cfg.Intents,
		Properties:     identifyProperties{OS: cfg.OS, Browser: cfg.Browser, Device: cfg.Device},
		Compress:       cfg.Compression == CompressionZlibPayload,
		LargeThreshold: cfg.LargeThreshold,
		Shard:          [2]int{cfg.ShardID, cfg.ShardCount},
		Presence:       cfg.Presence,
	}
	if cfg.PresenceSource != nil {
		if p := cfg.PresenceSource(c.readCtx); p != nil {
			d.Presence = p
		}
	}
	if d.Presence != nil && d.Presence.Activities == nil {
		p := *d.Presence
		p.Activities = []Activity{}
		d.Presence = &p
	}
	payload, err := json.Marshal(outgoing{Op: OpIdentify, D: d})
	if err != nil {
		return nil, fmt.Errorf("encode IDENTIFY: %w", err)
	}
	if len(payload) > MaxPayloadSize {
		return nil, fmt.Errorf("encode IDENTIFY: %w (%d bytes; presence too large?)", ErrPayloadTooLarge, len(payload))
	}
	return payload, nil
}
