package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/internal/sqlstore"
	"github.com/stockbus/stockbus/service"
)

// load reads one product, found by its sku (by "sku") or by one of its batch references (by
// "ref"), in one read-only snapshot, and returns it with its row version. The product is shared
// with the cache: callers clone it before changing anything.
func (s *Store) load(ctx context.Context, by, key string) (*domain.Product, int64, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, mapError("load", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	sku := key
	if by == "ref" {
		err := tx.QueryRow(ctx, "SELECT sku FROM batches WHERE reference = $1", key).Scan(&sku)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, 0, fmt.Errorf("batch %s: %w", key, service.ErrNotFound)
		}
		if err != nil {
			return nil, 0, mapError("load batch "+key, err)
		}
	}
	p := domain.NewProduct(sku, nil)
	var version int64
	err = tx.QueryRow(ctx, "SELECT version, version_number FROM products WHERE sku = $1", sku).Scan(&version, &p.VersionNumber)
	if errors.Is(err, pgx.ErrNoRows) {
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

func loadBatches(ctx context.Context, tx pgx.Tx, p *domain.Product) error {
	rows, err := tx.Query(ctx, "SELECT reference, purchased, eta FROM batches WHERE sku = $1 ORDER BY position", p.SKU)
	if err != nil {
		return mapError("load batches of "+p.SKU, err)
	}
	byRef := map[string]*domain.Batch{}
	var (
		ref       string
		purchased int
		eta       *string
	)
	_, err = pgx.ForEachRow(rows, []any{&ref, &purchased, &eta}, func() error {
		t, err := parseETA(eta)
		if err != nil {
			return fmt.Errorf("batch %s: %w", ref, err)
		}
		b := domain.NewBatch(ref, p.SKU, purchased, t)
		p.Batches = append(p.Batches, b)
		byRef[ref] = b
		return nil
	})
	if err != nil {
		return mapError("load batches of "+p.SKU, err)
	}
	rows, err = tx.Query(ctx, `SELECT a.batch_ref, a.order_id, a.qty FROM allocations a
		JOIN batches b ON b.reference = a.batch_ref WHERE b.sku = $1 ORDER BY a.id`, p.SKU)
	if err != nil {
		return mapError("load allocations of "+p.SKU, err)
	}
	line := domain.OrderLine{SKU: p.SKU}
	_, err = pgx.ForEachRow(rows, []any{&ref, &line.OrderID, &line.Qty}, func() error {
		return addLine(byRef[ref], line)
	})
	return mapError("load allocations of "+p.SKU, err)
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

func parseETA(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, *s)
}

func formatETA(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// write applies a transaction's entries in one READ COMMITTED transaction. Products are
// written in sku order, so two commits lock shared rows in the same order.
func (s *Store) write(ctx context.Context, entries []sqlstore.Entry) error {
	pgTx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return mapError("commit: begin", err)
	}
	defer func() { _ = pgTx.Rollback(context.Background()) }()
	w := &writer{ctx: ctx, tx: pgTx, store: s}
	sorted := slices.SortedFunc(slices.Values(entries), func(a, b sqlstore.Entry) int { return cmp.Compare(a.P.SKU, b.P.SKU) })
	for _, e := range sorted {
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
	if err := pgTx.Commit(ctx); err != nil {
		return mapError("commit", err)
	}
	return nil
}

type writer struct {
	ctx   context.Context
	tx    pgx.Tx
	store *Store
	n     int // statements run
}

func (w *writer) exec(query string, args ...any) (pgconn.CommandTag, error) {
	tag, err := w.tx.Exec(w.ctx, query, args...)
	if err == nil {
		w.step()
	}
	return tag, err
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
		tag, err := w.exec("INSERT INTO products (sku, version, version_number) VALUES ($1, 1, $2) ON CONFLICT (sku) DO NOTHING", p.SKU, p.VersionNumber)
		if err != nil {
			return mapError("commit: add product "+p.SKU, err)
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("commit: product %s was added by another commit: %w", p.SKU, service.ErrConcurrentUpdate)
		}
		return w.batches(p, nil)
	case p.SameState(e.Orig):
		// Read only: FOR SHARE keeps writers off the row until this commit ends, so what the
		// work decided from it (out of stock, say) holds, while other readers share the lock.
		if w.store.noVersionCheck {
			return nil
		}
		var v int64
		err := w.tx.QueryRow(w.ctx, "SELECT version FROM products WHERE sku = $1 FOR SHARE", p.SKU).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && v != e.Version) {
			return fmt.Errorf("commit: product %s changed since it was loaded: %w", p.SKU, service.ErrConcurrentUpdate)
		}
		if err != nil {
			return mapError("commit: check product "+p.SKU, err)
		}
		w.step()
		return nil
	}
	query, args := "UPDATE products SET version = version + 1, version_number = $1 WHERE sku = $2 AND version = $3",
		[]any{p.VersionNumber, p.SKU, e.Version}
	if w.store.noVersionCheck {
		query, args = "UPDATE products SET version = version + 1, version_number = $1 WHERE sku = $2", args[:2]
	}
	tag, err := w.exec(query, args...)
	if err != nil {
		return mapError("commit: update product "+p.SKU, err)
	}
	if tag.RowsAffected() != 1 {
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
			if _, err := w.exec("INSERT INTO batches (reference, sku, position, purchased, eta) VALUES ($1, $2, $3, $4, $5)",
				b.Reference, p.SKU, i, b.PurchasedQuantity(), formatETA(b.ETA)); err != nil {
				if isUniqueViolation(err, "batches_pkey") {
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
		if _, err := w.exec("UPDATE batches SET position = $1, purchased = $2, eta = $3 WHERE reference = $4",
			i, b.PurchasedQuantity(), formatETA(b.ETA), b.Reference); err != nil {
			return mapError("commit: update batch "+b.Reference, err)
		}
		if err := w.lines(ob, b); err != nil {
			return err
		}
	}
	for ref := range old { // batches the work removed from the product
		if _, err := w.exec("DELETE FROM allocations WHERE batch_ref = $1", ref); err != nil {
			return mapError("commit: remove batch "+ref, err)
		}
		if _, err := w.exec("DELETE FROM batches WHERE reference = $1", ref); err != nil {
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
	if len(gone) > 0 {
		if _, err := w.exec("DELETE FROM allocations WHERE batch_ref = $1 AND order_id = ANY($2)", b.Reference, gone); err != nil {
			return mapError("commit: deallocate from "+b.Reference, err)
		}
	}
	return w.insertLines(b.Reference, added)
}

func (w *writer) insertLines(ref string, lines []domain.OrderLine) error {
	if len(lines) == 0 {
		return nil
	}
	ids, qtys := make([]string, len(lines)), make([]int64, len(lines))
	for i, l := range lines {
		ids[i], qtys[i] = l.OrderID, int64(l.Qty)
	}
	// ORDER BY n makes the serial ids follow the lines' order.
	if _, err := w.exec(`INSERT INTO allocations (batch_ref, order_id, qty)
		SELECT $1, o, q FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS l(o, q, n) ORDER BY n`, ref, ids, qtys); err != nil {
		return mapError("commit: allocate to "+ref, err)
	}
	return nil
}
