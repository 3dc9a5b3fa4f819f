package lease

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// leaseOp is one operation of the recorded history.
type leaseOp struct {
	Kind   string // "claim", "release", "valid"
	Client int
	Shard  int
}

// leaseModel is the sequential spec of one shard's lease (porcupine
// partitions the history per shard): state is the holding client, or -1.
var leaseModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range h {
			s := op.Input.(leaseOp).Shard
			by[s] = append(by[s], op)
		}
		out := make([][]porcupine.Operation, 0, len(by))
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return -1 },
	Step: func(state, input, output any) (bool, any) {
		holder, in, ok := state.(int), input.(leaseOp), output.(bool)
		switch in.Kind {
		case "claim":
			if ok {
				return holder == -1, in.Client
			}
			return holder != -1 && holder != in.Client, holder
		case "release":
			if holder == in.Client {
				return ok, -1
			}
			return !ok, holder
		case "valid":
			return ok == (holder == in.Client), holder
		}
		return false, holder
	},
	DescribeOperation: func(input, output any) string {
		in := input.(leaseOp)
		return fmt.Sprintf("c%d %s(%d) -> %v", in.Client, in.Kind, in.Shard, output)
	},
}

// P1: many concurrent claimers, each with its own session and connection,
// claim, check and release a few shards; the recorded history must be
// linearizable against a single-holder lease per shard.
func TestExclusivityLinearizable(t *testing.T) {
	srv, _ := startRedis(t)
	const clients, shards = 8, 3
	cfg := testConfig("")
	cfg.TTL, cfg.RenewDeadline, cfg.RenewInterval, cfg.DataLossGrace = 10*time.Second, 6*time.Second, time.Second, 10*time.Second
	sessions := make([]*Session, clients)
	for i := range sessions {
		sessions[i] = newSession(t, newClient(t, srv.Addr()), cfg)
	}
	endGrace(t, newClient(t, srv.Addr()), "")

	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	record := func(c int, in leaseOp, call time.Duration, out bool) {
		mu.Lock()
		defer mu.Unlock()
		history = append(history, porcupine.Operation{ClientId: c, Input: in, Output: out,
			Call: int64(call), Return: int64(time.Since(start))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for ctx.Err() == nil {
				key := ShardKey{ID: r.IntN(shards), Count: shards}
				call := time.Since(start)
				l, err := s.Claim(context.Background(), key)
				if err != nil && !errors.Is(err, ErrLeaseHeld) {
					errs <- fmt.Errorf("client %d claim: %w", c, err)
					return
				}
				record(c, leaseOp{"claim", c, key.ID}, call, err == nil)
				if err != nil {
					continue
				}
				call = time.Since(start)
				ok, err := l.Valid(context.Background())
				if err != nil {
					errs <- err
					return
				}
				record(c, leaseOp{"valid", c, key.ID}, call, ok)
				call = time.Since(start)
				err = l.Release(context.Background())
				record(c, leaseOp{"release", c, key.ID}, call, err == nil)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	claims := 0
	for _, op := range history {
		if op.Input.(leaseOp).Kind == "claim" && op.Output.(bool) {
			claims++
		}
	}
	if claims < 20 {
		t.Fatalf("only %d successful claims in %d operations: too little contention to judge", claims, len(history))
	}
	res := porcupine.CheckOperationsTimeout(leaseModel, history, 30*time.Second)
	if res != porcupine.Ok {
		t.Fatalf("history of %d operations is %s against a single-holder lease", len(history), res)
	}
	t.Logf("%d operations, %d successful claims: linearizable", len(history), claims)
}

// The checker itself must be able to fail: two overlapping successful
// claims of one shard by different clients are rejected.
func TestExclusivityCheckerCatchesDoubleOwner(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: leaseOp{"claim", 0, 1}, Output: true, Call: 0, Return: 10},
		{ClientId: 1, Input: leaseOp{"claim", 1, 1}, Output: true, Call: 20, Return: 30},
		{ClientId: 0, Input: leaseOp{"release", 0, 1}, Output: true, Call: 40, Return: 50},
	}
	if porcupine.CheckOperations(leaseModel, h) {
		t.Fatal("double ownership accepted")
	}
	h[1].Call, h[1].Return = 45, 60 // concurrent with the release: fine
	if !porcupine.CheckOperations(leaseModel, h) {
		t.Fatal("a claim concurrent with the release rejected")
	}
}
