package fakes

import (
	"context"
	"sync"
)

// Rendezvous forces an interleaving: the first n transactions that reach it wait until all n
// have, then go on together; later ones pass straight through. Used as a Store.SetBeforeCommit hook
// with n = 2 it makes two units of work run "load, load, commit, commit" whatever the scheduler
// does, so exactly one of them conflicts.
type Rendezvous struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

// NewRendezvous returns a rendezvous for n transactions.
func NewRendezvous(n int) *Rendezvous { return &Rendezvous{n: n, all: make(chan struct{})} }

// Wait is the Hook: it blocks until n callers have arrived or ctx is done.
func (r *Rendezvous) Wait(ctx context.Context, _ []string) {
	r.mu.Lock()
	if r.arrived >= r.n {
		r.mu.Unlock()
		return
	}
	r.arrived++
	if r.arrived == r.n {
		close(r.all)
	}
	r.mu.Unlock()
	select {
	case <-r.all:
	case <-ctx.Done():
	}
}
