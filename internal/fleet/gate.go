package fleet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// Drained waits until the outbox of store holds no pending row (neither done nor parked),
// looking every few milliseconds, for at most bound; it fails after bound or when ctx ends.
func Drained(ctx context.Context, store *postgres.Store, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		// Not OutboxCounts: it reads an unreadable table as empty.
		var pending int
		if err := store.Pool().QueryRow(ctx, "SELECT COUNT(*) FROM outbox WHERE NOT done AND NOT dead").Scan(&pending); err != nil {
			return fmt.Errorf("fleet: count pending outbox rows: %w", err)
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: the outbox still holds %d pending rows after %v", pending, bound)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // polling for a state, not timing anything
		}
	}
}

// Gate holds every mail transaction of an smtptest sink while it is closed (its Plan is the
// sink's smtptest.Plan), and counts the transactions it holds: at MAIL FROM until it opens, or,
// made with afterData, by taking the message and never replying (the client gives up at its send
// timeout, or dies). It is how a kill is made to land between commits and deliveries whatever the
// machine's speed. A new Gate is open; its methods are safe for concurrent use.
type Gate struct {
	afterData bool

	mu     sync.Mutex
	closed bool
	held   []int // the transactions held since the gate closed
	opened chan struct{}
}

// NewGate returns an open gate that holds at MAIL FROM, or after the data with afterData.
func NewGate(afterData bool) *Gate {
	return &Gate{afterData: afterData, opened: make(chan struct{})}
}

// Plan is the sink's smtptest.Plan: it passes transaction n while the gate is open, and holds
// it while it is closed.
func (g *Gate) Plan(n int) smtptest.Fault {
	g.mu.Lock()
	if !g.closed {
		g.mu.Unlock()
		return smtptest.Fault{}
	}
	g.held = append(g.held, n)
	opened := g.opened
	g.mu.Unlock()
	if g.afterData {
		return smtptest.Fault{At: smtptest.AtData, Hang: true}
	}
	<-opened
	return smtptest.Fault{}
}

// Close starts holding every new transaction, and restarts the count; it may be called when
// closed.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed, g.held, g.opened = true, nil, make(chan struct{})
	}
}

// Open releases the transactions held at MAIL FROM; it may be called when open. Call it before
// the sink's Close, which waits for the transactions it holds.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.closed = false
		close(g.opened)
	}
}

// Held is the number of transactions held since the gate last closed.
func (g *Gate) Held() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.held)
}

// Taken reports whether sink has read the message of every transaction held after its data.
func (g *Gate) Taken(sink *smtptest.Server) bool {
	g.mu.Lock()
	held := append([]int(nil), g.held...)
	g.mu.Unlock()
	read := map[int]bool{}
	for _, m := range sink.Messages() {
		read[m.Index] = true
	}
	for _, n := range held {
		if !read[n] {
			return false
		}
	}
	return true
}
