package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

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
		if _, err := w.exec("INSERT INTO outbox (event_id, type, payload) VALUES ($1, $2, $3)", e.Identity().ID, typ, payload); err != nil {
			return mapError("commit: outbox event "+e.Identity().ID, err)
		}
	}
	return nil
}

// Pending returns up to limit rows neither done nor parked, oldest first, whoever holds them. It
// returns nothing when the database cannot be read.
func (s *Store) Pending(limit int) []outbox.Row {
	rows, _ := s.outboxRows(context.Background(), "SELECT seq, type, payload::text, attempts FROM outbox WHERE NOT done AND NOT dead ORDER BY seq LIMIT $1", limit)
	return rows
}

// Outbox returns every outbox row ever stored, in commit order.
func (s *Store) Outbox() []outbox.Row {
	rows, _ := s.outboxRows(context.Background(), "SELECT seq, type, payload::text, attempts FROM outbox ORDER BY seq")
	return rows
}

// outboxRows runs a query of seq, type, payload and attempts.
func (s *Store) outboxRows(ctx context.Context, query string, args ...any) ([]outbox.Row, error) {
	dead, err := s.deadRows(ctx, query, args...)
	rows := make([]outbox.Row, len(dead))
	for i, d := range dead {
		rows[i] = d.Row
	}
	return rows, err
}

// deadRows runs a query of seq, type, payload, attempts and, when there is a fifth column, reason.
func (s *Store) deadRows(ctx context.Context, query string, args ...any) ([]outbox.DeadLetter, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var (
		out          []outbox.DeadLetter
		row          outbox.DeadLetter
		seq          int64
		typ, payload string
	)
	dest := []any{&seq, &typ, &payload, &row.Attempts}
	if len(rows.FieldDescriptions()) > 4 {
		dest = append(dest, &row.Reason)
	}
	_, err = pgx.ForEachRow(rows, dest, func() error {
		e, err := decodeEvent(typ, payload)
		if err != nil {
			return fmt.Errorf("outbox row %d: %w", seq, err)
		}
		row.Seq, row.Event = uint64(seq), e
		out = append(out, row)
		return nil
	})
	return out, err
}

// MarkDone records that the events with these IDs were delivered. Unknown IDs are ignored.
func (s *Store) MarkDone(ids ...string) { _ = s.Done(context.Background(), ids...) }

// OutboxCounts returns how many outbox rows are pending (neither done nor parked) and how many
// are done.
func (s *Store) OutboxCounts() (pending, done int) {
	_ = s.pool.QueryRow(context.Background(), "SELECT COUNT(*) FILTER (WHERE NOT done AND NOT dead), COUNT(*) FILTER (WHERE done) FROM outbox").Scan(&pending, &done)
	return pending, done
}

// claimQuery leases the oldest claimable rows. FOR UPDATE SKIP LOCKED makes concurrent claims,
// from any number of processes, pass over each other's rows instead of queueing for them; and
// should one wait anyway, READ COMMITTED re-checks the lease on the row it locked, so a row is
// never handed to two claims whose leases overlap.
const claimQuery = `WITH claimable AS (
	SELECT seq FROM outbox
	WHERE NOT done AND NOT dead AND not_before <= $3 AND lease_until <= $3
	ORDER BY seq
	LIMIT $4
	FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET claimed_by = $1, lease_until = $2
FROM claimable c WHERE o.seq = c.seq
RETURNING o.seq, o.type, o.payload::text, o.attempts`

// Claim implements outbox.Store. Claims by relays of any number of processes never block each
// other (FOR UPDATE SKIP LOCKED) and never hand out a row twice while its lease runs.
func (s *Store) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]outbox.Row, error) {
	if err := outbox.CheckClaim(relay, now, until, limit); err != nil {
		return nil, err
	}
	rows, err := s.outboxRows(ctx, claimQuery, relay, until, now, limit)
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
	_, err := s.pool.Exec(ctx, "UPDATE outbox SET done = true WHERE NOT dead AND event_id = ANY($1)", ids)
	return mapError("mark outbox rows done", err)
}

// Retry implements outbox.Store.
func (s *Store) Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error {
	return s.settle(ctx, relay, id, "not_before = $4, claimed_by = '', lease_until = '-infinity'", reason, notBefore)
}

// Dead implements outbox.Store.
func (s *Store) Dead(ctx context.Context, relay, id, reason string) error {
	return s.settle(ctx, relay, id, "dead = true", reason)
}

func (s *Store) settle(ctx context.Context, relay, id, set, reason string, args ...any) error {
	tag, err := s.pool.Exec(ctx, "UPDATE outbox SET attempts = attempts + 1, reason = $3, "+set+
		" WHERE event_id = $1 AND claimed_by = $2 AND NOT done AND NOT dead", append([]any{id, relay, reason}, args...)...)
	if err != nil {
		return mapError("outbox row "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("outbox row %s of relay %s: %w", id, relay, outbox.ErrNotClaimed)
	}
	return nil
}

// DeadLetters implements outbox.Store.
func (s *Store) DeadLetters(ctx context.Context) ([]outbox.DeadLetter, error) {
	dead, err := s.deadRows(ctx, "SELECT seq, type, payload::text, attempts, reason FROM outbox WHERE dead ORDER BY seq")
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
