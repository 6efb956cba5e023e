package sim

import (
	"context"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// crashStore is the fake store as the workers see it when the process can crash: every commit is
// a step of the worker's incarnation, between the crash points before and after it. It observes
// and injects; the fake store does the work.
type crashStore struct {
	r     *run
	store *fakes.Store
}

var _ service.Store = crashStore{}

func (s crashStore) Begin(ctx context.Context) (service.Tx, error) {
	tx, err := s.store.Begin(ctx)
	if err != nil {
		return nil, err
	}
	return &crashTx{Tx: tx, r: s.r}, nil
}

type crashTx struct {
	service.Tx
	r *run
}

// Commit crashes the process before the commit when the plan says so, commits unless the
// worker's process has died, records the events the commit carried, and crashes after it when
// the plan says so. A crash, or a process that died under the request, unwinds the request with
// a crashed panic (the unit of work rolls back on the way out).
func (t *crashTx) Commit(ctx context.Context) error {
	r := t.r
	a := actorOf(ctx)
	if a == nil || a.w == nil {
		return t.Tx.Commit(ctx)
	}
	if r.crashAt(ctx, BeforeCommit, nil) {
		panic(crashed{BeforeCommit})
	}
	if !r.enter(a) {
		panic(crashed{})
	}
	err := t.Tx.Commit(ctx)
	var carried []string
	if err == nil {
		carried = a.w.committed(t.Seen(), r.now(), !r.strategy.Durable())
	}
	r.exit()
	if err == nil && r.crashAt(ctx, AfterCommit, carried) {
		panic(crashed{AfterCommit})
	}
	return err
}
