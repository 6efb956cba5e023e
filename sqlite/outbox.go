package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/outbox"
)

var _ outbox.Store = (*Store)(nil)

// outboxDialect is the outbox table's SQL on SQLite: times are Unix nanoseconds, the flags 0 or
// 1. Relays of one process take turns with the store's commits (the write mutex); relays of other
// processes wait for SQLite's write lock (the busy timeout), so no two claims overlap.
var outboxDialect = sqlstore.Dialect{
	Claim: `UPDATE outbox SET claimed_by = ?1, lease_until = ?2
WHERE seq IN (SELECT seq FROM outbox WHERE done = 0 AND dead = 0 AND not_before <= ?3 AND lease_until <= ?3 ORDER BY seq LIMIT ?4)
RETURNING seq, type, payload, attempts`,
	// One argument, a JSON array, however many IDs: no limit on bound parameters to meet.
	Done:        "UPDATE outbox SET done = 1 WHERE dead = 0 AND event_id IN (SELECT value FROM json_each(?1))",
	Retry:       "UPDATE outbox SET attempts = attempts + 1, reason = ?3, not_before = ?4, claimed_by = '', lease_until = 0 WHERE event_id = ?1 AND claimed_by = ?2 AND done = 0 AND dead = 0",
	Dead:        "UPDATE outbox SET attempts = attempts + 1, reason = ?3, dead = 1 WHERE event_id = ?1 AND claimed_by = ?2 AND done = 0 AND dead = 0",
	DeadLetters: "SELECT seq, type, payload, attempts, reason FROM outbox WHERE dead = 1 ORDER BY seq",
	All:         "SELECT seq, type, payload, attempts FROM outbox ORDER BY seq",
	Counts:      "SELECT COUNT(*) FILTER (WHERE done = 0 AND dead = 0), COUNT(*) FILTER (WHERE done = 1) FROM outbox",
	Time:        func(t time.Time) any { return t.UnixNano() },
	IDs: func(ids []string) any {
		b, _ := json.Marshal(ids) // a []string always marshals
		return string(b)
	},
	MapError: mapError,
}

// withOutbox gives s its outbox table, whose writes queue behind s's write mutex.
func withOutbox(s *Store) *Store {
	d := outboxDialect
	d.Writes = &s.writing
	s.OutboxTable = sqlstore.NewOutboxTable(sqlDB{s.db}, d)
	return s
}

func (w *writer) outbox(events []domain.Event) error {
	return sqlstore.InsertOutbox(events, func(id, typ, payload string) error {
		_, err := w.exec("INSERT INTO outbox (event_id, type, payload) VALUES (?, ?, ?)", id, typ, payload)
		return mapError("commit: outbox event "+id, err)
	})
}

// sqlDB is database/sql's pool as sqlstore.DB.
type sqlDB struct{ db *sql.DB }

func (d sqlDB) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

func (d sqlDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := d.db.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { _ = r.Rows.Close() }
