// Package sqlite is a service.Store on an embedded SQLite database (modernc.org/sqlite, pure Go,
// through database/sql): the real store a newcomer can run without a server.
//
// Concurrency is optimistic. A transaction reads outside the write lock (each Get is its own
// read-only snapshot), and Commit takes the lock with BEGIN IMMEDIATE, then bumps every changed
// product with UPDATE ... SET version = version + 1 WHERE sku = ? AND version = ? and checks the
// version of every unchanged product it saw, under the same lock. A deferred transaction that
// read and then wrote would fail with SQLITE_BUSY_SNAPSHOT whenever any other commit landed in
// between, so unrelated products would conflict; reading outside the lock avoids that.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/service"
)

// ErrTxDone is returned when a transaction is used after Commit or Rollback.
var ErrTxDone = errors.New("transaction already committed or rolled back")

// Hook is service.CommitHook, the type of the store's before- and after-commit hooks; it is an
// alias, so fakes.Hook and the hook types of the other stores are the same type.
type Hook = service.CommitHook

// Store is a service.Store on one SQLite file. It is safe for concurrent use; Close it when done.
type Store struct {
	db                        *sql.DB
	writing                   sync.Mutex // queues this process's commits for SQLite's one write lock
	beforeCommit, afterCommit atomic.Pointer[service.CommitHook]
	*sqlstore.OutboxTable     // the outbox table behind the outbox.Store port (outbox.go)
	cache                     sqlstore.Cache

	// Test knobs (see export_test.go): a hook after each statement of a commit, and a switch
	// that drops the version predicate to show what it prevents.
	afterStatement func(ctx context.Context, n int)
	noVersionCheck bool
}

var _ service.Store = (*Store)(nil)

// DefaultBusyTimeout is how long a commit waits for the write lock by default before it fails
// with service.ErrConcurrentUpdate.
const DefaultBusyTimeout = 5 * time.Second

// Option configures Open.
type Option func(*options)

type options struct{ busyTimeout time.Duration }

// WithBusyTimeout sets how long a commit waits for the write lock (default DefaultBusyTimeout).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// Open opens (creating if needed) the database file at path in WAL mode with a busy timeout,
// and creates or upgrades its schema. In-memory databases have no WAL and are refused.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open sqlite store: need a file path, got %q", path)
	}
	o := options{busyTimeout: DefaultBusyTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if o.busyTimeout < 0 {
		return nil, fmt.Errorf("open sqlite store: negative busy timeout %v", o.busyTimeout)
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", o.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	return withOutbox(&Store{db: db}), nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the database, for tests and tools that inspect the tables.
func (s *Store) DB() *sql.DB { return s.db }

// SchemaVersion is the version of the schema this package creates.
const SchemaVersion = 3

var migrations = []string{
	1: `
CREATE TABLE products (
	sku            TEXT PRIMARY KEY,
	version        INTEGER NOT NULL, -- the row's version: +1 on every commit that changes it
	version_number INTEGER NOT NULL  -- the aggregate's VersionNumber
);
CREATE TABLE batches (
	reference TEXT PRIMARY KEY,
	sku       TEXT NOT NULL REFERENCES products(sku),
	position  INTEGER NOT NULL,
	purchased INTEGER NOT NULL,
	eta       TEXT -- RFC 3339 with nanoseconds; NULL for warehouse stock
);
CREATE INDEX batches_by_sku ON batches(sku, position);
CREATE TABLE allocations (
	id        INTEGER PRIMARY KEY AUTOINCREMENT, -- allocation order
	batch_ref TEXT NOT NULL REFERENCES batches(reference),
	order_id  TEXT NOT NULL,
	qty       INTEGER NOT NULL,
	UNIQUE (batch_ref, order_id)
);
CREATE TABLE outbox (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id TEXT NOT NULL UNIQUE,
	type     TEXT NOT NULL,
	payload  TEXT NOT NULL,
	done     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON outbox(done, seq);
`,
	// 2: the relay's claim (a lease), retries and dead letters. Times are Unix nanoseconds.
	2: `
ALTER TABLE outbox ADD COLUMN dead        INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN attempts    INTEGER NOT NULL DEFAULT 0; -- failed sends
ALTER TABLE outbox ADD COLUMN reason      TEXT    NOT NULL DEFAULT ''; -- the last failure
ALTER TABLE outbox ADD COLUMN not_before  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_by  TEXT    NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox(seq) WHERE done = 0 AND dead = 0;
`,
	// 3: the event log, the ground truth of what committed (see EventLog).
	3: `
CREATE TABLE event_log (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order
	event_id     TEXT NOT NULL,                     -- not unique: the log records, it does not judge
	type         TEXT NOT NULL,
	causation_id TEXT NOT NULL,                     -- '' for a root
	payload      TEXT NOT NULL
);
CREATE INDEX event_log_by_id ON event_log(event_id);
`,
}

// migrate brings the schema to SchemaVersion under the write lock, so two processes opening a
// new file at once do not both create it.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("migrate: schema version %d is newer than this program's %d", v, SchemaVersion)
	}
	for next := v + 1; next <= SchemaVersion; next++ {
		if _, err := tx.ExecContext(ctx, migrations[next]); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", next, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return tx.Commit()
}

// mapError turns SQLite's lock errors into service.ErrConcurrentUpdate.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *sqlite3.Error
	if errors.As(err, &e) && e.Code()&0xff == sqliteBusy { // SQLITE_BUSY and its extended codes, SQLITE_BUSY_SNAPSHOT among them
		return fmt.Errorf("%s: %w: %w", op, service.ErrConcurrentUpdate, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

const (
	sqliteBusy           = 5
	sqliteConstraintPK   = 19 | 6<<8 // SQLITE_CONSTRAINT_PRIMARYKEY
	sqliteConstraintUniq = 19 | 8<<8 // SQLITE_CONSTRAINT_UNIQUE
	sqliteBusySnapshot   = 5 | 2<<8  // documents the extended code mapError also maps
	_                    = sqliteBusySnapshot
)

func isUniqueViolation(err error) bool {
	var e *sqlite3.Error
	return errors.As(err, &e) && (e.Code() == sqliteConstraintPK || e.Code() == sqliteConstraintUniq)
}

// Begin starts a transaction. It takes no lock and opens nothing until the first Get.
func (s *Store) Begin(ctx context.Context) (service.Tx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &tx{Tx: sqlstore.NewTx(s.load, ErrTxDone), store: s}, nil
}

// SetBeforeCommit sets a hook that runs at the start of every Commit, before the write lock is
// taken: holding a transaction there forces "load, load, commit, commit". nil removes it.
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
	var v uint64
	_ = s.db.QueryRow("SELECT version FROM products WHERE sku = ?", sku).Scan(&v)
	return v
}

// SKUs returns the skus of the stored products, sorted.
func (s *Store) SKUs() []string {
	rows, err := s.db.Query("SELECT sku FROM products ORDER BY sku")
	if err != nil {
		return nil
	}
	defer func() { _ = rows.Close() }()
	var skus []string
	for rows.Next() {
		var sku string
		if rows.Scan(&sku) == nil {
			skus = append(skus, sku)
		}
	}
	return skus
}

// Touch bumps the product's row version without changing it, as if another writer had
// committed: every transaction that loaded it before fails to commit. It reports whether the
// product exists.
func (s *Store) Touch(sku string) bool {
	res, err := s.db.Exec("UPDATE products SET version = version + 1 WHERE sku = ?", sku)
	if err != nil {
		return false
	}
	n, err := res.RowsAffected()
	return err == nil && n == 1
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
