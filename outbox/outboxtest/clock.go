package outboxtest

import (
	"context"
	"sync"
	"time"
)

// Clock is a manual outbox.Clock: time moves only when Advance is called, so leases and backoffs
// are tested without sleeping. It is safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	afters  int
	changed chan struct{} // closed and replaced on every After
}

type waiter struct {
	at time.Time
	c  chan time.Time
}

// NewClock returns a clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start, changed: make(chan struct{})} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the clock has been advanced by d (at once when d
// is not positive), and counts the call.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, waiter{at: c.now.Add(d), c: ch})
	}
	c.afters++
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock on by d and fires every After whose time has come.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.c <- c.now
	}
	c.waiters = kept
}

// Afters returns how many times After was called: a relay calls it once each time it finds
// nothing to claim and starts to wait.
func (c *Clock) Afters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.afters
}

// AwaitAfters blocks until After has been called at least n times in all, or ctx ends (then it
// returns ctx's error).
func (c *Clock) AwaitAfters(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		afters, changed := c.afters, c.changed
		c.mu.Unlock()
		if afters >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
