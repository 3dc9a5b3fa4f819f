package gateway

import (
	"context"
	"errors"
	"sync"
)

// ErrUnconfirmed: the connection a command was written on ended before
// Discord acknowledged a heartbeat written after it. Discord may or may not
// have read the command (a write only hands it to the kernel): sending it
// again on the next connection is at-least-once.
var ErrUnconfirmed = errors.New("gateway: connection ended before Discord confirmed the command")

// Receipt tells whether Discord read a command SendTracked wrote. Discord
// reads a connection in order and acknowledges each heartbeat (op 11) as it
// reads it, so an ACK of a heartbeat written after the command proves the
// command was read; nothing else does. Only a Receipt from a successful
// SendTracked may be read.
type Receipt struct {
	c *connection
	n uint64 // the command's number among the connection's written commands
}

// Read reports whether Discord has read the command: true once a heartbeat
// written after it was acknowledged, ErrUnconfirmed once its connection
// ended first, else false (not yet known: the next heartbeat tells).
func (r Receipt) Read() (bool, error) {
	ended := r.c.readCtx.Err() != nil // before the count: an ACK read before the end is in it
	r.c.confirm.mu.Lock()
	read := r.c.confirm.read >= r.n
	r.c.confirm.mu.Unlock()
	if !read && ended {
		return false, ErrUnconfirmed
	}
	return read, nil
}

// confirmations counts what Discord has read of a connection's commands.
type confirmations struct {
	mu      sync.Mutex
	written uint64   // commands written in full (numbered from 1)
	beats   []uint64 // per heartbeat written and not yet ACKed, oldest first: the commands written before it
	read    uint64   // commands Discord has read: those before the last ACKed heartbeat
}

// wrote numbers a command whose write completed.
func (k *confirmations) wrote() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.written++
	return k.written
}

// beat records a heartbeat about to be written: it covers the commands
// written in full so far (a command still being written is not covered:
// its bytes may follow the heartbeat's).
func (k *confirmations) beat() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.beats = append(k.beats, k.written)
}

// acked records op 11: the oldest heartbeat outstanding was read, with
// every command before it. Covers grow with each beat, so taking them in
// order never claims more than was read, even if two beats crossed.
func (k *confirmations) acked() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.beats) == 0 {
		return
	}
	k.read = max(k.read, k.beats[0])
	k.beats = k.beats[1:]
}

// writeHeartbeat writes a heartbeat, recording what it covers once its
// send slot is taken (just before its bytes go out).
func (c *connection) writeHeartbeat(ctx context.Context) error {
	if err := c.lim.wait(ctx, true); err != nil {
		return err
	}
	c.confirm.beat()
	return c.writeFrame(c.heartbeatPayload())
}

// SendTracked writes one command; see Gateway.SendTracked.
func (g *gatewayImpl) SendTracked(ctx context.Context, op Opcode, data any) (Receipt, error) {
	c, err := g.send(ctx, op, data)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{c: c, n: c.confirm.wrote()}, nil
}
