package fakes

import (
	"slices"

	"github.com/stockbus/stockbus/domain"
)

// OutboxRow is an event stored by the commit that recorded it, waiting for a relay to deliver it.
type OutboxRow struct {
	Seq   uint64 // position in commit order, from 1
	Event domain.Event
}

// outbox is the store's table of committed events. Rows are kept in commit order; first is the
// index of the oldest row not yet marked done, so reading what is pending does not rescan history.
type outbox struct {
	enabled bool
	rows    []OutboxRow
	done    []bool
	index   map[string]int // event ID -> row
	first   int
}

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
func (o *outbox) add(events []domain.Event) {
	for _, e := range events {
		o.rows = append(o.rows, OutboxRow{Seq: uint64(len(o.rows) + 1), Event: e})
		o.done = append(o.done, false)
		o.index[e.Identity().ID] = len(o.rows) - 1
	}
}

// Pending returns up to limit rows not yet marked done, oldest first.
func (s *Store) Pending(limit int) []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	var rows []OutboxRow
	for i := o.first; i < len(o.rows) && len(rows) < limit; i++ {
		if !o.done[i] {
			rows = append(rows, o.rows[i])
		}
	}
	return rows
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &s.outbox
	for _, id := range ids {
		if i, ok := o.index[id]; ok {
			o.done[i] = true
		}
	}
	for o.first < len(o.done) && o.done[o.first] {
		o.first++
	}
}

// OutboxCounts returns how many outbox rows are pending and how many are done.
func (s *Store) OutboxCounts() (pending, done int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.outbox.done[s.outbox.first:] {
		if !d {
			pending++
		}
	}
	return pending, len(s.outbox.rows) - pending
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []OutboxRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outbox.rows)
}
