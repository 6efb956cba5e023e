package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

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
		if _, err := w.exec("INSERT INTO outbox (event_id, type, payload) VALUES ($1, $2, $3)", e.Identity().ID, typ, payload); err != nil {
			return mapError("commit: outbox event "+e.Identity().ID, err)
		}
	}
	return nil
}

// Pending returns up to limit rows not yet marked done, oldest first. It returns nothing when
// the database cannot be read.
func (s *Store) Pending(limit int) []fakes.OutboxRow {
	return s.outboxRows("WHERE NOT done ORDER BY seq LIMIT $1", limit)
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []fakes.OutboxRow { return s.outboxRows("ORDER BY seq") }

func (s *Store) outboxRows(where string, args ...any) []fakes.OutboxRow {
	rows, err := s.pool.Query(context.Background(), "SELECT seq, type, payload::text FROM outbox "+where, args...)
	if err != nil {
		return nil
	}
	var (
		out          []fakes.OutboxRow
		seq          int64
		typ, payload string
	)
	_, _ = pgx.ForEachRow(rows, []any{&seq, &typ, &payload}, func() error {
		e, err := decodeEvent(typ, payload)
		if err != nil {
			return err
		}
		out = append(out, fakes.OutboxRow{Seq: uint64(seq), Event: e})
		return nil
	})
	return out
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) {
	if len(ids) > 0 {
		_, _ = s.pool.Exec(context.Background(), "UPDATE outbox SET done = true WHERE event_id = ANY($1)", ids)
	}
}

// OutboxCounts returns how many outbox rows are pending and how many are done.
func (s *Store) OutboxCounts() (pending, done int) {
	_ = s.pool.QueryRow(context.Background(), "SELECT COUNT(*) FILTER (WHERE NOT done), COUNT(*) FILTER (WHERE done) FROM outbox").Scan(&pending, &done)
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
