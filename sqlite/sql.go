package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/service"
)

// load reads one product, found by its sku (by "sku") or by one of its batch references (by
// "ref"), in a read-only snapshot, and returns it with its row version. The product is shared
// with the cache: callers clone it before changing anything.
func (s *Store) load(ctx context.Context, by, key string) (*domain.Product, int64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // a deferred BEGIN: no write lock
	if err != nil {
		return nil, 0, mapError("load", err)
	}
	defer func() { _ = tx.Rollback() }()
	sku := key
	if by == "ref" {
		err := tx.QueryRowContext(ctx, "SELECT sku FROM batches WHERE reference = ?", key).Scan(&sku)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, 0, fmt.Errorf("batch %s: %w", key, service.ErrNotFound)
		}
		if err != nil {
			return nil, 0, mapError("load batch "+key, err)
		}
	}
	p := domain.NewProduct(sku, nil)
	var version int64
	err = tx.QueryRowContext(ctx, "SELECT version, version_number FROM products WHERE sku = ?", sku).Scan(&version, &p.VersionNumber)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, fmt.Errorf("product %s: %w", sku, service.ErrNotFound)
	}
	if err != nil {
		return nil, 0, mapError("load product "+sku, err)
	}
	if c, ok := s.cache.Get(sku, version); ok {
		return c, version, nil
	}
	if err := loadBatches(ctx, tx, p); err != nil {
		return nil, 0, err
	}
	s.cache.Put(sku, version, p)
	return p, version, nil
}

func loadBatches(ctx context.Context, tx *sql.Tx, p *domain.Product) error {
	rows, err := tx.QueryContext(ctx, "SELECT reference, purchased, eta FROM batches WHERE sku = ? ORDER BY position", p.SKU)
	if err != nil {
		return mapError("load batches of "+p.SKU, err)
	}
	byRef := map[string]*domain.Batch{}
	for rows.Next() {
		var (
			ref       string
			purchased int
			eta       sql.NullString
		)
		if err := rows.Scan(&ref, &purchased, &eta); err != nil {
			_ = rows.Close()
			return fmt.Errorf("load batches of %s: %w", p.SKU, err)
		}
		t, err := parseETA(eta)
		if err != nil {
			_ = rows.Close()
			return fmt.Errorf("load batch %s: %w", ref, err)
		}
		b := domain.NewBatch(ref, p.SKU, purchased, t)
		p.Batches = append(p.Batches, b)
		byRef[ref] = b
	}
	if err := rows.Err(); err != nil {
		return mapError("load batches of "+p.SKU, err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT a.batch_ref, a.order_id, a.qty FROM allocations a
		JOIN batches b ON b.reference = a.batch_ref WHERE b.sku = ? ORDER BY a.id`, p.SKU)
	if err != nil {
		return mapError("load allocations of "+p.SKU, err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var line domain.OrderLine
		var ref string
		if err := rows.Scan(&ref, &line.OrderID, &line.Qty); err != nil {
			return fmt.Errorf("load allocations of %s: %w", p.SKU, err)
		}
		line.SKU = p.SKU
		if err := addLine(byRef[ref], line); err != nil {
			return err
		}
	}
	return mapError("load allocations of "+p.SKU, rows.Err())
}

// addLine puts a stored line back into its batch. A line that does not fit means the rows were
// changed behind the store's back: that is an error, not a line to drop silently.
func addLine(b *domain.Batch, line domain.OrderLine) error {
	n := b.Allocations()
	b.Allocate(line)
	if b.Allocations() != n+1 {
		return fmt.Errorf("load batch %s: stored line %s of %d does not fit (available %d)", b.Reference, line.OrderID, line.Qty, b.AvailableQuantity())
	}
	return nil
}

func parseETA(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s.String)
}

func formatETA(t time.Time) sql.NullString {
	if t.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: t.UTC().Format(time.RFC3339Nano), Valid: true}
}

// write applies a transaction's entries atomically under the write lock. SQLite has one writer
// at a time, and a connection that finds the lock taken polls for it with sleeps of up to 100ms,
// so the store's own commits queue on a mutex first; the busy timeout is left for other processes.
func (s *Store) write(ctx context.Context, entries []sqlstore.Entry) error {
	s.writing.Lock()
	defer s.writing.Unlock()
	sqlTx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (the DSN's _txlock)
	if err != nil {
		return mapError("commit: take the write lock", err)
	}
	defer func() { _ = sqlTx.Rollback() }()
	w := &writer{ctx: ctx, tx: sqlTx, store: s}
	for _, e := range entries {
		if err := w.entry(e); err != nil {
			return err
		}
	}
	if err := w.eventLog(entries); err != nil {
		return err
	}
	if s.OutboxEnabled() {
		for _, e := range entries {
			if err := w.outbox(e.P.Events); err != nil {
				return err
			}
		}
	}
	if err := sqlTx.Commit(); err != nil {
		return mapError("commit", err)
	}
	return nil
}

type writer struct {
	ctx   context.Context
	tx    *sql.Tx
	store *Store
	n     int // statements run
}

func (w *writer) exec(query string, args ...any) (sql.Result, error) {
	res, err := w.tx.ExecContext(w.ctx, query, args...)
	if err == nil {
		w.step()
	}
	return res, err
}

// step counts a statement that ran and calls the test hook.
func (w *writer) step() {
	w.n++
	if w.store.afterStatement != nil {
		w.store.afterStatement(w.ctx, w.n)
	}
}

func (w *writer) entry(e sqlstore.Entry) error {
	p := e.P
	switch {
	case e.Orig == nil:
		if _, err := w.exec("INSERT INTO products (sku, version, version_number) VALUES (?, 1, ?)", p.SKU, p.VersionNumber); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("commit: product %s was added by another commit: %w", p.SKU, service.ErrConcurrentUpdate)
			}
			return mapError("commit: add product "+p.SKU, err)
		}
		return w.batches(p, nil)
	case p.SameState(e.Orig):
		// Read only: the row stays as it is, so readers do not conflict with each other, but
		// what the work decided from it (out of stock, say) must still be true now.
		if w.store.noVersionCheck {
			return nil
		}
		var v int64
		err := w.tx.QueryRowContext(w.ctx, "SELECT version FROM products WHERE sku = ?", p.SKU).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && v != e.Version) {
			return fmt.Errorf("commit: product %s changed since it was loaded: %w", p.SKU, service.ErrConcurrentUpdate)
		}
		if err != nil {
			return mapError("commit: check product "+p.SKU, err)
		}
		w.step()
		return nil
	}
	query, args := "UPDATE products SET version = version + 1, version_number = ? WHERE sku = ? AND version = ?",
		[]any{p.VersionNumber, p.SKU, e.Version}
	if w.store.noVersionCheck {
		query, args = "UPDATE products SET version = version + 1, version_number = ? WHERE sku = ?", args[:2]
	}
	res, err := w.exec(query, args...)
	if err != nil {
		return mapError("commit: update product "+p.SKU, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("commit: product %s changed since it was loaded: %w", p.SKU, service.ErrConcurrentUpdate)
	}
	return w.batches(p, e.Orig)
}

// batches writes what changed in p's batches since orig (nil: p is new): new batches, changed
// quantities, and only the allocation lines added or removed, so a commit that allocates one
// line to a batch of 100,000 writes one row.
func (w *writer) batches(p, orig *domain.Product) error {
	type stored struct {
		b   *domain.Batch
		pos int
	}
	old := map[string]stored{}
	if orig != nil {
		for i, b := range orig.Batches {
			old[b.Reference] = stored{b, i}
		}
	}
	for i, b := range p.Batches {
		o, ok := old[b.Reference]
		delete(old, b.Reference)
		if !ok {
			if _, err := w.exec("INSERT INTO batches (reference, sku, position, purchased, eta) VALUES (?, ?, ?, ?, ?)",
				b.Reference, p.SKU, i, b.PurchasedQuantity(), formatETA(b.ETA)); err != nil {
				if isUniqueViolation(err) {
					return fmt.Errorf("commit: batch %s of %s: %w", b.Reference, p.SKU, domain.ErrDuplicateBatch)
				}
				return mapError("commit: add batch "+b.Reference, err)
			}
			if err := w.insertLines(b.Reference, b.Lines()); err != nil {
				return err
			}
			continue
		}
		ob := o.b
		if o.pos == i && sameBatch(p.SKU, ob, b) {
			continue
		}
		if _, err := w.exec("UPDATE batches SET position = ?, purchased = ?, eta = ? WHERE reference = ?",
			i, b.PurchasedQuantity(), formatETA(b.ETA), b.Reference); err != nil {
			return mapError("commit: update batch "+b.Reference, err)
		}
		if err := w.lines(ob, b); err != nil {
			return err
		}
	}
	for ref := range old { // batches the work removed from the product
		if _, err := w.exec("DELETE FROM allocations WHERE batch_ref = ?", ref); err != nil {
			return mapError("commit: remove batch "+ref, err)
		}
		if _, err := w.exec("DELETE FROM batches WHERE reference = ?", ref); err != nil {
			return mapError("commit: remove batch "+ref, err)
		}
	}
	return nil
}

// sameBatch reports in O(1) whether b is certainly unchanged since ob: Product.SameState compares
// allocation sets by identity.
func sameBatch(sku string, ob, b *domain.Batch) bool {
	return (&domain.Product{SKU: sku, Batches: []*domain.Batch{ob}}).SameState(&domain.Product{SKU: sku, Batches: []*domain.Batch{b}})
}

// lines deletes the lines ob held that b does not, then inserts the lines b holds that ob did
// not, oldest first, so that stored allocation order follows the batch's. The usual commit only
// adds lines, and then ob's lines are not listed at all.
func (w *writer) lines(ob, b *domain.Batch) error {
	var added []domain.OrderLine
	kept := 0
	for _, l := range b.Lines() {
		if held, ok := ob.Holds(l.OrderID, l.SKU); ok && held.Qty == l.Qty {
			kept++
		} else {
			added = append(added, l)
		}
	}
	var gone []string
	if kept < ob.Allocations() {
		for _, l := range ob.Lines() {
			if held, ok := b.Holds(l.OrderID, l.SKU); !ok || held.Qty != l.Qty {
				gone = append(gone, l.OrderID)
			}
		}
	}
	for _, id := range gone {
		if _, err := w.exec("DELETE FROM allocations WHERE batch_ref = ? AND order_id = ?", b.Reference, id); err != nil {
			return mapError("commit: deallocate "+id, err)
		}
	}
	return w.insertLines(b.Reference, added)
}

// linesPerInsert keeps an INSERT's parameters (three per line) under SQLite's limit of 32766.
const linesPerInsert = 1000

// insertLines inserts the lines in order, up to linesPerInsert of them per statement.
func (w *writer) insertLines(ref string, lines []domain.OrderLine) error {
	for len(lines) > 0 {
		chunk := lines[:min(len(lines), linesPerInsert)]
		lines = lines[len(chunk):]
		var q strings.Builder
		q.WriteString("INSERT INTO allocations (batch_ref, order_id, qty) VALUES ")
		args := make([]any, 0, 3*len(chunk))
		for i, l := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?)")
			args = append(args, ref, l.OrderID, l.Qty)
		}
		if _, err := w.exec(q.String(), args...); err != nil {
			return mapError("commit: allocate to "+ref, err)
		}
	}
	return nil
}
