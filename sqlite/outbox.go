package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
)

// EnableOutbox makes every later commit store the pending events of the products it saw as
// outbox rows, in the same transaction as the products (the transactional outbox).
func (s *Store) EnableOutbox() { s.outbox.Store(true) }

func (w *writer) outbox(events []domain.Event) error {
	for _, e := range events {
		typ, payload, err := encodeEvent(e)
		if err != nil {
			return fmt.Errorf("commit: outbox: %w", err)
		}
		if _, err := w.exec("INSERT INTO outbox (event_id, type, payload) VALUES (?, ?, ?)", e.Identity().ID, typ, payload); err != nil {
			return mapError("commit: outbox event "+e.Identity().ID, err)
		}
	}
	return nil
}

// Pending returns up to limit rows not yet marked done, oldest first. It returns nothing when
// the database cannot be read.
func (s *Store) Pending(limit int) []fakes.OutboxRow {
	return s.outboxRows("WHERE done = 0 ORDER BY seq LIMIT ?", limit)
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []fakes.OutboxRow { return s.outboxRows("ORDER BY seq") }

func (s *Store) outboxRows(where string, args ...any) []fakes.OutboxRow {
	rows, err := s.db.Query("SELECT seq, type, payload FROM outbox "+where, args...)
	if err != nil {
		return nil
	}
	defer func() { _ = rows.Close() }()
	var out []fakes.OutboxRow
	for rows.Next() {
		var (
			row          fakes.OutboxRow
			typ, payload string
		)
		if rows.Scan(&row.Seq, &typ, &payload) != nil {
			return out
		}
		e, err := decodeEvent(typ, payload)
		if err != nil {
			return out
		}
		row.Event = e
		out = append(out, row)
	}
	return out
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) {
	if len(ids) == 0 {
		return
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	_, _ = s.db.ExecContext(context.Background(),
		"UPDATE outbox SET done = 1 WHERE event_id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", args...)
}

// OutboxCounts returns how many outbox rows are pending and how many are done.
func (s *Store) OutboxCounts() (pending, done int) {
	_ = s.db.QueryRow("SELECT COUNT(*) FILTER (WHERE done = 0), COUNT(*) FILTER (WHERE done = 1) FROM outbox").Scan(&pending, &done)
	return pending, done
}

func encodeEvent(e domain.Event) (typ, payload string, err error) {
	switch e.(type) {
	case domain.OutOfStock:
		typ = "OutOfStock"
	case domain.Allocated:
		typ = "Allocated"
	case domain.Deallocated:
		typ = "Deallocated"
	default:
		return "", "", fmt.Errorf("cannot store event of type %T", e)
	}
	b, err := json.Marshal(e)
	return typ, string(b), err
}

func decodeEvent(typ, payload string) (domain.Event, error) {
	switch typ {
	case "OutOfStock":
		return decode[domain.OutOfStock](payload)
	case "Allocated":
		return decode[domain.Allocated](payload)
	case "Deallocated":
		return decode[domain.Deallocated](payload)
	}
	return nil, fmt.Errorf("unknown event type %q", typ)
}

func decode[E domain.Event](payload string) (domain.Event, error) {
	var e E
	err := json.Unmarshal([]byte(payload), &e)
	return e, err
}
