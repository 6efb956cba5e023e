package fakes

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/outbox"
)

// OutboxRow is an event stored by the commit that recorded it, waiting for a relay to deliver
// it. It is outbox.Row; the name is kept for older callers.
type OutboxRow = outbox.Row

var _ outbox.Store = (*Store)(nil)

// outboxTable is the store's table of committed events. Rows are kept in commit order; first is the
// index of the oldest row neither done nor parked, so reading what is pending does not rescan
// history.
type outboxTable struct {
	enabled bool
	rows    []outboxEntry
	index   map[string]int // event ID -> row
	first   int
}

type outboxEntry struct {
	row        OutboxRow
	done, dead bool
	reason     string
	notBefore  time.Time
	claimedBy  string
	leaseUntil time.Time
}

func (e *outboxEntry) settled() bool { return e.done || e.dead }

// EnableOutbox makes every later commit store the pending events of the products it saw as outbox
// rows, atomically with the products (the transactional outbox). Call it before use.
func (s *Store) EnableOutbox() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outbox.enabled = true
	if s.outbox.index == nil {
		s.outbox.index = map[string]int{}
	}
}

// must be called with s.mu held.
func (o *outboxTable) add(events []domain.Event) {
	for _, e := range events {
		o.rows = append(o.rows, outboxEntry{row: OutboxRow{Seq: uint64(len(o.rows) + 1), Event: e}})
		o.index[e.Identity().ID] = len(o.rows) - 1
	}
}

// must be called with s.mu held.
func (o *outboxTable) advance() {
	for o.first < len(o.rows) && o.rows[o.first].settled() {
		o.first++
	}
}

// Pending returns up to limit rows neither done nor parked, oldest first, whoever holds them.
func (s *Store) Pending(limit int) []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	var rows []OutboxRow
	for i := o.first; i < len(o.rows) && len(rows) < limit; i++ {
		if !o.rows[i].settled() {
			rows = append(rows, o.rows[i].row)
		}
	}
	return rows
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) { _ = s.Done(context.Background(), ids...) }

// OutboxCounts returns how many outbox rows are pending (neither done nor parked) and how many
// are done.
func (s *Store) OutboxCounts() (pending, done int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.outbox.rows {
		switch {
		case e.done:
			done++
		case !e.dead:
			pending++
		}
	}
	return pending, done
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := make([]OutboxRow, len(s.outbox.rows))
	for i, e := range s.outbox.rows {
		rows[i] = e.row
	}
	return rows
}

// Claim implements outbox.Store.
func (s *Store) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]OutboxRow, error) {
	if err := outbox.CheckClaim(relay, now, until, limit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	var rows []OutboxRow
	for i := o.first; i < len(o.rows) && len(rows) < limit; i++ {
		e := &o.rows[i]
		if e.settled() || e.notBefore.After(now) || e.leaseUntil.After(now) {
			continue
		}
		e.claimedBy, e.leaseUntil = relay, until
		rows = append(rows, e.row)
	}
	return rows, nil
}

// Done implements outbox.Store.
func (s *Store) Done(ctx context.Context, ids ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	for _, id := range ids {
		if i, ok := o.index[id]; ok && !o.rows[i].dead {
			o.rows[i].done = true
		}
	}
	o.advance()
	return nil
}

// Retry implements outbox.Store.
func (s *Store) Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error {
	return s.settle(relay, id, func(e *outboxEntry) {
		e.notBefore, e.reason = notBefore, reason
		e.claimedBy, e.leaseUntil = "", time.Time{}
	})
}

// Dead implements outbox.Store.
func (s *Store) Dead(ctx context.Context, relay, id, reason string) error {
	return s.settle(relay, id, func(e *outboxEntry) { e.dead, e.reason = true, reason })
}

func (s *Store) settle(relay, id string, f func(*outboxEntry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	i, ok := o.index[id]
	if !ok || o.rows[i].settled() || o.rows[i].claimedBy != relay {
		return fmt.Errorf("outbox row %s of relay %s: %w", id, relay, outbox.ErrNotClaimed)
	}
	o.rows[i].row.Attempts++
	f(&o.rows[i])
	o.advance()
	return nil
}

// DeadLetters implements outbox.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]outbox.DeadLetter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var dead []outbox.DeadLetter
	for _, e := range s.outbox.rows {
		if e.dead {
			dead = append(dead, outbox.DeadLetter{Row: e.row, Reason: e.reason})
		}
	}
	return slices.Clip(dead), nil
}
