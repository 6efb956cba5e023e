package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/outbox"
)

var _ outbox.Store = (*Store)(nil)

// outboxDialect is the outbox table's SQL on Postgres.
//
// The claim leases the oldest claimable rows. FOR UPDATE SKIP LOCKED makes concurrent claims,
// from any number of processes, pass over each other's rows instead of queueing for them; and
// should one wait anyway, READ COMMITTED re-checks the lease on the row it locked, so a row is
// never handed to two claims whose leases overlap.
var outboxDialect = sqlstore.Dialect{
	Claim: `WITH claimable AS (
	SELECT seq FROM outbox
	WHERE NOT done AND NOT dead AND not_before <= $3 AND lease_until <= $3
	ORDER BY seq
	LIMIT $4
	FOR UPDATE SKIP LOCKED
)
UPDATE outbox o SET claimed_by = $1, lease_until = $2
FROM claimable c WHERE o.seq = c.seq
RETURNING o.seq, o.type, o.payload::text, o.attempts`,
	Done:        "UPDATE outbox SET done = true WHERE NOT dead AND event_id = ANY($1)",
	Retry:       "UPDATE outbox SET attempts = attempts + 1, reason = $3, not_before = $4, claimed_by = '', lease_until = '-infinity' WHERE event_id = $1 AND claimed_by = $2 AND NOT done AND NOT dead",
	Dead:        "UPDATE outbox SET attempts = attempts + 1, reason = $3, dead = true WHERE event_id = $1 AND claimed_by = $2 AND NOT done AND NOT dead",
	DeadLetters: "SELECT seq, type, payload::text, attempts, reason FROM outbox WHERE dead ORDER BY seq",
	All:         "SELECT seq, type, payload::text, attempts FROM outbox ORDER BY seq",
	Counts:      "SELECT COUNT(*) FILTER (WHERE NOT done AND NOT dead), COUNT(*) FILTER (WHERE done) FROM outbox",
	Time:        func(t time.Time) any { return t },
	IDs:         func(ids []string) any { return ids },
	MapError:    mapError,
}

// withOutbox gives s its outbox table. Claims by relays of any number of processes never block
// each other (FOR UPDATE SKIP LOCKED) and never hand out a row twice while its lease runs.
func withOutbox(s *Store) *Store {
	s.OutboxTable = sqlstore.NewOutboxTable(pgxDB{s.pool}, outboxDialect)
	return s
}

func (w *writer) outbox(events []domain.Event) error {
	return sqlstore.InsertOutbox(events, func(id, typ, payload string) error {
		_, err := w.exec("INSERT INTO outbox (event_id, type, payload) VALUES ($1, $2, $3)", id, typ, payload)
		return mapError("commit: outbox event "+id, err)
	})
}

// pgxDB is the pool as sqlstore.DB.
type pgxDB struct{ pool *pgxpool.Pool }

func (d pgxDB) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return d.pool.Query(ctx, query, args...)
}

func (d pgxDB) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := d.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}
