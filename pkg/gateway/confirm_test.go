package gateway_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// A command's Receipt reads true only once Discord acknowledged a heartbeat
// written after it; when the connection ends first (here: the fake stops
// ACKing, so the gateway closes it as a zombie), it is ErrUnconfirmed,
// never true.
func TestReceiptConfirmsOnlyAfterAHeartbeatACK(t *testing.T) {
	s := newFake(t)
	g := newShard(t, s, nil)
	open(t, g)
	ctx := context.Background()
	presence := gateway.PresenceUpdate{Status: "online", Activities: []gateway.Activity{}}

	r, err := g.SendTracked(ctx, gateway.OpPresenceUpdate, presence)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the command confirmed", func() bool {
		read, err := r.Read()
		if err != nil {
			t.Fatalf("Read: %v on a live connection", err)
		}
		return read
	})
	if n := len(s.Commands()); n != 1 {
		t.Fatalf("confirmed, but the fake has %d commands, want 1", n)
	}

	s.SetAckHeartbeats(false)
	r, err = g.SendTracked(ctx, gateway.OpPresenceUpdate, presence)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	eventually(t, "the connection to end without confirming it", func() bool {
		read, err := r.Read()
		if read {
			t.Fatal("confirmed without a heartbeat ACK")
		}
		last = err
		return err != nil
	})
	if !errors.Is(last, gateway.ErrUnconfirmed) {
		t.Fatalf("Read after the connection ended: %v, want ErrUnconfirmed", last)
	}
}
