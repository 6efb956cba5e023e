package sqlite

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/outbox"
)

var _ outbox.Store = (*Store)(nil)

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

// Pending returns up to limit rows neither done nor parked, oldest first, whoever holds them. It
// returns nothing when the database cannot be read.
func (s *Store) Pending(limit int) []outbox.Row {
	rows, _ := s.outboxRows(context.Background(), "SELECT seq, type, payload, attempts FROM outbox WHERE done = 0 AND dead = 0 ORDER BY seq LIMIT ?", limit)
	return rows
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []outbox.Row {
	rows, _ := s.outboxRows(context.Background(), "SELECT seq, type, payload, attempts FROM outbox ORDER BY seq")
	return rows
}

// outboxRows runs a query of seq, type, payload and attempts (and, for dead letters, reason).
func (s *Store) outboxRows(ctx context.Context, query string, args ...any) ([]outbox.Row, error) {
	dead, err := s.deadRows(ctx, query, args...)
	rows := make([]outbox.Row, len(dead))
	for i, d := range dead {
		rows[i] = d.Row
	}
	return rows, err
}

func (s *Store) deadRows(ctx context.Context, query string, args ...any) ([]outbox.DeadLetter, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []outbox.DeadLetter
	for rows.Next() {
		var (
			row          outbox.DeadLetter
			typ, payload string
		)
		dest := []any{&row.Seq, &typ, &payload, &row.Attempts}
		if len(cols) > 4 {
			dest = append(dest, &row.Reason)
		}
		if err := rows.Scan(dest...); err != nil {
			return out, err
		}
		if row.Event, err = decodeEvent(typ, payload); err != nil {
			return out, fmt.Errorf("outbox row %d: %w", row.Seq, err)
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) { _ = s.Done(context.Background(), ids...) }

// OutboxCounts returns how many outbox rows are pending (neither done nor parked) and how many
// are done.
func (s *Store) OutboxCounts() (pending, done int) {
	_ = s.db.QueryRow("SELECT COUNT(*) FILTER (WHERE done = 0 AND dead = 0), COUNT(*) FILTER (WHERE done = 1) FROM outbox").Scan(&pending, &done)
	return pending, done
}

// Claim implements outbox.Store. Relays of one process take turns with the store's commits; relays
// of other processes wait for SQLite's write lock (the busy timeout), so no two claims overlap.
func (s *Store) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]outbox.Row, error) {
	if err := outbox.CheckClaim(relay, now, until, limit); err != nil {
		return nil, err
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	rows, err := s.outboxRows(ctx, `UPDATE outbox SET claimed_by = ?, lease_until = ?
WHERE seq IN (SELECT seq FROM outbox WHERE done = 0 AND dead = 0 AND not_before <= ? AND lease_until <= ? ORDER BY seq LIMIT ?)
RETURNING seq, type, payload, attempts`, relay, until.UnixNano(), now.UnixNano(), now.UnixNano(), limit)
	if err != nil {
		return nil, mapError("claim outbox rows", err)
	}
	slices.SortFunc(rows, func(a, b outbox.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	return rows, nil
}

// Done implements outbox.Store.
func (s *Store) Done(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	s.writing.Lock()
	defer s.writing.Unlock()
	_, err := s.db.ExecContext(ctx, "UPDATE outbox SET done = 1 WHERE dead = 0 AND event_id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", args...)
	return mapError("mark outbox rows done", err)
}

// Retry implements outbox.Store.
func (s *Store) Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error {
	return s.settle(ctx, relay, id, "not_before = ?, claimed_by = '', lease_until = 0", reason, notBefore.UnixNano())
}

// Dead implements outbox.Store.
func (s *Store) Dead(ctx context.Context, relay, id, reason string) error {
	return s.settle(ctx, relay, id, "dead = 1", reason)
}

func (s *Store) settle(ctx context.Context, relay, id, set, reason string, args ...any) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	res, err := s.db.ExecContext(ctx, "UPDATE outbox SET attempts = attempts + 1, reason = ?, "+set+
		" WHERE event_id = ? AND claimed_by = ? AND done = 0 AND dead = 0", append(append([]any{reason}, args...), id, relay)...)
	if err != nil {
		return mapError("outbox row "+id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("outbox row %s of relay %s: %w", id, relay, outbox.ErrNotClaimed)
	}
	return nil
}

// DeadLetters implements outbox.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]outbox.DeadLetter, error) {
	dead, err := s.deadRows(ctx, "SELECT seq, type, payload, attempts, reason FROM outbox WHERE dead = 1 ORDER BY seq")
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return dead, nil
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
