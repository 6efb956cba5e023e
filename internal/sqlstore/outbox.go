package sqlstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/outbox"
)

// DB is what an OutboxTable needs of a database handle: a query whose rows it scans and a
// statement whose affected rows it counts. Each SQL store adapts its driver's pool to it.
type DB interface {
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	Exec(ctx context.Context, query string, args ...any) (affected int64, err error)
}

// Rows is a query's result as an OutboxTable reads it: database/sql's and pgx's rows both fit,
// but for Close, whose error (database/sql's) the adapter drops: Err reports what went wrong.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Dialect is the SQL of one store's outbox table. Every query returns the columns seq, type,
// payload (as text) and attempts, in that order, and DeadLetters a fifth, reason.
type Dialect struct {
	// Claim leases rows: its arguments are the relay, until, now and the limit, the times as Time
	// makes them. It returns the claimed rows in any order.
	Claim string
	// Done marks done, all in one statement, the rows that are not parked and whose event IDs are
	// in its one argument, as IDs makes it.
	Done string
	// Retry and Dead update the one row relay holds that is neither done nor parked: arguments
	// event ID, relay, reason and, for Retry, the not-before time. Each also adds one attempt.
	Retry, Dead string
	// DeadLetters, All and Counts read the parked rows (in commit order), every row (in commit
	// order), and how many rows are pending (neither done nor parked) and done.
	DeadLetters, All, Counts string
	// Time turns a time into the driver's argument for the table's time columns.
	Time func(time.Time) any
	// IDs turns event IDs into Done's argument.
	IDs func([]string) any
	// MapError maps a driver error of the operation op to the store's errors (nil stays nil).
	MapError func(op string, err error) error
	// Writes, when set, is held around every statement that writes: a store whose database has
	// one writer queues its relays with its commits behind it.
	Writes sync.Locker
}

// OutboxTable is a SQL store's outbox table behind the outbox.Store port, in the store's
// dialect. A store embeds it (so its methods are the store's) and writes the rows in its commits
// (OutboxEnabled, InsertOutbox). It is safe for concurrent use.
type OutboxTable struct {
	db      DB
	d       Dialect
	enabled atomic.Bool
}

var _ outbox.Store = (*OutboxTable)(nil)

// NewOutboxTable returns the outbox table on db, in dialect d, with the outbox off.
func NewOutboxTable(db DB, d Dialect) *OutboxTable { return &OutboxTable{db: db, d: d} }

// EnableOutbox makes every later commit store the pending events of the products it saw as
// outbox rows, in the same transaction as the products (the transactional outbox).
func (t *OutboxTable) EnableOutbox() { t.enabled.Store(true) }

// OutboxEnabled reports whether commits write the outbox.
func (t *OutboxTable) OutboxEnabled() bool { return t.enabled.Load() }

// Outbox returns every outbox row ever stored, in commit order. It returns nothing when the
// database cannot be read.
func (t *OutboxTable) Outbox() []outbox.Row {
	rows, _ := t.rows(context.Background(), t.d.All)
	return rows
}

// OutboxCounts returns how many outbox rows are pending (neither done nor parked) and how many
// are done; zeros when the database cannot be read.
func (t *OutboxTable) OutboxCounts() (pending, done int) {
	rows, err := t.db.Query(context.Background(), t.d.Counts)
	if err != nil {
		return 0, 0
	}
	defer rows.Close()
	if rows.Next() {
		_ = rows.Scan(&pending, &done)
	}
	return pending, done
}

// Claim implements outbox.Store.
func (t *OutboxTable) Claim(ctx context.Context, relay string, now, until time.Time, limit int) ([]outbox.Row, error) {
	if err := outbox.CheckClaim(relay, now, until, limit); err != nil {
		return nil, err
	}
	defer t.write()()
	rows, err := t.rows(ctx, t.d.Claim, relay, t.d.Time(until), t.d.Time(now), limit)
	if err != nil {
		return nil, t.d.MapError("claim outbox rows", err)
	}
	slices.SortFunc(rows, func(a, b outbox.Row) int { return cmp.Compare(a.Seq, b.Seq) })
	return rows, nil
}

// Done implements outbox.Store, in one statement whatever the number of IDs.
func (t *OutboxTable) Done(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	defer t.write()()
	_, err := t.db.Exec(ctx, t.d.Done, t.d.IDs(ids))
	return t.d.MapError("mark outbox rows done", err)
}

// Retry implements outbox.Store.
func (t *OutboxTable) Retry(ctx context.Context, relay, id string, notBefore time.Time, reason string) error {
	return t.settle(ctx, t.d.Retry, relay, id, reason, t.d.Time(notBefore))
}

// Dead implements outbox.Store.
func (t *OutboxTable) Dead(ctx context.Context, relay, id, reason string) error {
	return t.settle(ctx, t.d.Dead, relay, id, reason)
}

func (t *OutboxTable) settle(ctx context.Context, query, relay, id, reason string, args ...any) error {
	defer t.write()()
	n, err := t.db.Exec(ctx, query, append([]any{id, relay, reason}, args...)...)
	if err != nil {
		return t.d.MapError("outbox row "+id, err)
	}
	if n == 0 {
		return fmt.Errorf("outbox row %s of relay %s: %w", id, relay, outbox.ErrNotClaimed)
	}
	return nil
}

// DeadLetters implements outbox.Store.
func (t *OutboxTable) DeadLetters(ctx context.Context) ([]outbox.DeadLetter, error) {
	dead, err := t.scan(ctx, true, t.d.DeadLetters)
	if err != nil {
		return nil, fmt.Errorf("read dead letters: %w", err)
	}
	return dead, nil
}

// write takes the dialect's write lock, if any, and returns its release.
func (t *OutboxTable) write() (unlock func()) {
	if t.d.Writes == nil {
		return func() {}
	}
	t.d.Writes.Lock()
	return t.d.Writes.Unlock
}

func (t *OutboxTable) rows(ctx context.Context, query string, args ...any) ([]outbox.Row, error) {
	dead, err := t.scan(ctx, false, query, args...)
	rows := make([]outbox.Row, len(dead))
	for i, d := range dead {
		rows[i] = d.Row
	}
	return rows, err
}

// scan runs a query of seq, type, payload, attempts and, withReason, reason.
func (t *OutboxTable) scan(ctx context.Context, withReason bool, query string, args ...any) ([]outbox.DeadLetter, error) {
	rows, err := t.db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.DeadLetter
	for rows.Next() {
		var (
			row          outbox.DeadLetter
			seq          int64
			typ, payload string
		)
		dest := []any{&seq, &typ, &payload, &row.Attempts}
		if withReason {
			dest = append(dest, &row.Reason)
		}
		if err := rows.Scan(dest...); err != nil {
			return out, err
		}
		if row.Event, err = DecodeEvent(typ, payload); err != nil {
			return out, fmt.Errorf("outbox row %d: %w", seq, err)
		}
		row.Seq = uint64(seq)
		out = append(out, row)
	}
	return out, rows.Err()
}

// InsertOutbox writes events as outbox rows with insert, which runs the store's INSERT of one
// row (event ID, type, payload) in the commit's transaction.
func InsertOutbox(events []domain.Event, insert func(id, typ, payload string) error) error {
	for _, e := range events {
		typ, payload, err := EncodeEvent(e)
		if err != nil {
			return fmt.Errorf("commit: outbox: %w", err)
		}
		if err := insert(e.Identity().ID, typ, payload); err != nil {
			return err
		}
	}
	return nil
}

// EncodeEvent returns the type name and JSON payload under which the SQL stores keep e, or an
// error for an event type they do not know.
func EncodeEvent(e domain.Event) (typ, payload string, err error) {
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

// DecodeEvent is EncodeEvent's inverse.
func DecodeEvent(typ, payload string) (domain.Event, error) {
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
