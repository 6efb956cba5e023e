// Package postgres is a service.Store on PostgreSQL (github.com/jackc/pgx/v5 with a pool).
//
// Concurrency is optimistic and needs no more than READ COMMITTED. A transaction reads outside
// any write transaction (each Get is one read-only snapshot), and Commit, in one READ COMMITTED
// transaction, bumps every changed product with UPDATE ... SET version = version + 1 WHERE sku =
// $1 AND version = $2, and locks every unchanged product it saw with SELECT ... FOR SHARE and
// checks its version, so what the work decided from it still holds when it commits, while two
// readers of it both commit. Under READ COMMITTED an UPDATE that waited for a concurrent writer
// re-reads the row, so the version predicate sees that writer's bump and matches nothing: it is
// the predicate, not the isolation level, that stops a lost update (see the README).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/service"
)

// ErrTxDone is returned when a transaction is used after Commit or Rollback.
var ErrTxDone = errors.New("transaction already committed or rolled back")

// Hook is service.CommitHook, the type of the store's before- and after-commit hooks; it is an
// alias, so fakes.Hook and the hook types of the other stores are the same type.
type Hook = service.CommitHook

// Store is a service.Store on a PostgreSQL database. It is safe for concurrent use; Close it
// when done.
type Store struct {
	pool                      *pgxpool.Pool
	beforeCommit, afterCommit atomic.Pointer[service.CommitHook]
	*sqlstore.OutboxTable     // the outbox table behind the outbox.Store port (outbox.go)
	cache                     sqlstore.Cache

	// Test knobs (see export_test.go): a hook after each statement of a commit, and a switch
	// that drops the version predicate to show what it prevents.
	afterStatement func(ctx context.Context, n int)
	noVersionCheck bool
}

var _ service.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value string; pgxpool's
// pool_max_conns and friends apply) and creates or upgrades the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	return withOutbox(&Store{pool: pool}), nil
}

// Close closes the pool's connections.
func (s *Store) Close() { s.pool.Close() }

// Pool returns the connection pool, for tests and tools that inspect the tables.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SchemaVersion is the version of the schema this package creates.
const SchemaVersion = 3

var migrations = []string{
	1: `
CREATE TABLE products (
	sku            text PRIMARY KEY,
	version        bigint NOT NULL, -- the row's version: +1 on every commit that changes it
	version_number bigint NOT NULL  -- the aggregate's VersionNumber
);
CREATE TABLE batches (
	reference text PRIMARY KEY,
	sku       text NOT NULL REFERENCES products(sku),
	position  int NOT NULL,
	purchased bigint NOT NULL,
	eta       text -- RFC 3339 with nanoseconds; NULL for warehouse stock
);
CREATE INDEX batches_by_sku ON batches(sku, position);
CREATE TABLE allocations (
	id        bigserial PRIMARY KEY, -- allocation order
	batch_ref text NOT NULL REFERENCES batches(reference),
	order_id  text NOT NULL,
	qty       bigint NOT NULL,
	UNIQUE (batch_ref, order_id)
);
CREATE TABLE outbox (
	seq      bigserial PRIMARY KEY,
	event_id text NOT NULL UNIQUE,
	type     text NOT NULL,
	payload  jsonb NOT NULL,
	done     boolean NOT NULL DEFAULT false
);
CREATE INDEX outbox_pending ON outbox(seq) WHERE NOT done;
`,
	// 2: the relay's claim (a lease), retries and dead letters.
	2: `
ALTER TABLE outbox
	ADD COLUMN dead        boolean     NOT NULL DEFAULT false,
	ADD COLUMN attempts    int         NOT NULL DEFAULT 0,  -- failed sends
	ADD COLUMN reason      text        NOT NULL DEFAULT '', -- the last failure
	ADD COLUMN not_before  timestamptz NOT NULL DEFAULT '-infinity',
	ADD COLUMN claimed_by  text        NOT NULL DEFAULT '',
	ADD COLUMN lease_until timestamptz NOT NULL DEFAULT '-infinity';
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox(seq) WHERE NOT done AND NOT dead;
`,
	// 3: the event log, the ground truth of what committed (see EventLog).
	3: `
CREATE TABLE event_log (
	seq          bigserial PRIMARY KEY, -- commit order of the events, across every process
	event_id     text NOT NULL,         -- not unique: the log records, it does not judge (an
	                                    -- unstamped event has '', a reused ID shows twice)
	type         text NOT NULL,
	causation_id text NOT NULL,         -- '' for an event recorded outside any message's handling
	payload      jsonb NOT NULL
);
CREATE INDEX event_log_by_id ON event_log(event_id);
`,
}

// migrationLock is the advisory lock key that serializes migrations of one database.
const migrationLock = 0x5705cb05

func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS stockbus_schema (version int NOT NULL)"); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var v int
	err = tx.QueryRow(ctx, "SELECT version FROM stockbus_schema").Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, "INSERT INTO stockbus_schema VALUES (0)"); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	case err != nil:
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("migrate: schema version %d is newer than this program's %d", v, SchemaVersion)
	}
	for next := v + 1; next <= SchemaVersion; next++ {
		if _, err := tx.Exec(ctx, migrations[next]); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", next, err)
		}
	}
	if _, err := tx.Exec(ctx, "UPDATE stockbus_schema SET version = $1", SchemaVersion); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return tx.Commit(ctx)
}

// SQLSTATEs this package maps.
const (
	serializationFailure = "40001"
	deadlockDetected     = "40P01"
	uniqueViolation      = "23505"
)

// mapError turns serialization failures and deadlocks into service.ErrConcurrentUpdate.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *pgconn.PgError
	if errors.As(err, &e) && (e.Code == serializationFailure || e.Code == deadlockDetected) {
		return fmt.Errorf("%s: %w: %w", op, service.ErrConcurrentUpdate, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUniqueViolation(err error, constraint string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == uniqueViolation && e.ConstraintName == constraint
}

// Begin starts a transaction. It takes no connection until the first Get.
func (s *Store) Begin(ctx context.Context) (service.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &tx{Tx: sqlstore.NewTx(s.load, ErrTxDone), store: s}, nil
}

// SetBeforeCommit sets a hook that runs at the start of every Commit, before its database
// transaction begins: holding a transaction there forces "load, load, commit, commit". nil
// removes it.
func (s *Store) SetBeforeCommit(h service.CommitHook) { s.beforeCommit.Store(&h) }

// SetAfterCommit sets a hook that runs after a Commit succeeded. nil removes it.
func (s *Store) SetAfterCommit(h service.CommitHook) { s.afterCommit.Store(&h) }

func runHook(ctx context.Context, h *atomic.Pointer[service.CommitHook], t *tx) {
	if f := h.Load(); f != nil && *f != nil {
		(*f)(ctx, t.SKUs())
	}
}

// Product returns the stored product with the sku. It reports false when there is none or the
// database cannot be read.
func (s *Store) Product(sku string) (*domain.Product, bool) {
	p, _, err := s.load(context.Background(), "sku", sku)
	if err != nil {
		return nil, false
	}
	return p.Clone(), true
}

// Revision returns the row version of the product, which changes on every commit that changes
// it, and 0 when there is no such product.
func (s *Store) Revision(sku string) uint64 {
	var v int64
	_ = s.pool.QueryRow(context.Background(), "SELECT version FROM products WHERE sku = $1", sku).Scan(&v)
	return uint64(v)
}

// SKUs returns the skus of the stored products, sorted.
func (s *Store) SKUs() []string {
	rows, err := s.pool.Query(context.Background(), "SELECT sku FROM products ORDER BY sku COLLATE \"C\"")
	if err != nil {
		return nil
	}
	skus, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	return skus
}

// Touch bumps the product's row version without changing it, as if another writer had
// committed: every transaction that loaded it before fails to commit. It reports whether the
// product exists.
func (s *Store) Touch(sku string) bool {
	tag, err := s.pool.Exec(context.Background(), "UPDATE products SET version = version + 1 WHERE sku = $1", sku)
	return err == nil && tag.RowsAffected() == 1
}

// tx is a transaction: the shared bookkeeping of the SQL stores, and this store's Commit.
type tx struct {
	*sqlstore.Tx
	store *Store
}

func (t *tx) Commit(ctx context.Context) error {
	if t.Done {
		return ErrTxDone
	}
	t.Done = true
	runHook(ctx, &t.store.beforeCommit, t)
	if err := t.store.write(ctx, t.Entries); err != nil {
		return err
	}
	if !t.store.noVersionCheck { // otherwise the versions written are not known
		t.Remember(&t.store.cache)
	}
	runHook(ctx, &t.store.afterCommit, t)
	return nil
}
