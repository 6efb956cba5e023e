package sqlstore

import (
	"context"
	"fmt"

	"github.com/stockbus/stockbus/domain"
)

// Entry is a product a transaction holds: the transaction's copy, what it was loaded as (nil for a
// product the transaction added) and the row version it was loaded at.
type Entry struct {
	P       *domain.Product
	Orig    *domain.Product
	Version int64
}

// LoadFunc loads the product whose sku (by "sku") or one of whose batch references (by "ref") is
// key, with its row version, or fails with an error wrapping service.ErrNotFound.
type LoadFunc func(ctx context.Context, by, key string) (*domain.Product, int64, error)

// Tx is the bookkeeping both SQL stores' transactions share: the products seen so far, in
// first-seen order, each loaded once. A store embeds it and adds its own Commit. It is not safe
// for concurrent use, like the service.Tx it serves.
type Tx struct {
	Entries []Entry
	Done    bool // after Commit or Rollback; every method then fails with the store's errDone

	seen    []*domain.Product
	load    LoadFunc
	errDone error
}

// NewTx returns an empty transaction that loads with load and fails with errDone once done.
func NewTx(load LoadFunc, errDone error) *Tx { return &Tx{load: load, errDone: errDone} }

func (t *Tx) find(sku string) (*domain.Product, bool) {
	for _, e := range t.Entries {
		if e.P.SKU == sku {
			return e.P, true
		}
	}
	return nil, false
}

// Add adds a new product and marks it seen.
func (t *Tx) Add(_ context.Context, p *domain.Product) error {
	if t.Done {
		return t.errDone
	}
	if _, ok := t.find(p.SKU); ok {
		return fmt.Errorf("add product %s: already in this transaction", p.SKU)
	}
	t.Entries = append(t.Entries, Entry{P: p})
	t.seen = append(t.seen, p)
	return nil
}

// Get returns the transaction's copy of the product, loading it on first use.
func (t *Tx) Get(ctx context.Context, sku string) (*domain.Product, error) {
	if t.Done {
		return nil, t.errDone
	}
	if p, ok := t.find(sku); ok {
		return p, nil
	}
	return t.loadBy(ctx, "sku", sku)
}

// GetByBatchRef returns the transaction's copy of the product that holds the batch.
func (t *Tx) GetByBatchRef(ctx context.Context, ref string) (*domain.Product, error) {
	if t.Done {
		return nil, t.errDone
	}
	for _, e := range t.Entries {
		if _, ok := e.P.Batch(ref); ok {
			return e.P, nil
		}
	}
	return t.loadBy(ctx, "ref", ref)
}

func (t *Tx) loadBy(ctx context.Context, by, key string) (*domain.Product, error) {
	orig, version, err := t.load(ctx, by, key)
	if err != nil {
		return nil, err
	}
	if p, ok := t.find(orig.SKU); ok { // found by batch ref, but already seen
		return p, nil
	}
	p := orig.Clone()
	t.Entries = append(t.Entries, Entry{P: p, Orig: orig, Version: version})
	t.seen = append(t.seen, p)
	return p, nil
}

// Seen returns the products added or loaded so far, in first-seen order.
func (t *Tx) Seen() []*domain.Product { return t.seen }

// Rollback discards the transaction.
func (t *Tx) Rollback() { t.Done = true }

// Remember caches the products a successful commit wrote, at the versions it gave them: 1 for an
// added product, one more than at load for a changed one.
func (t *Tx) Remember(c *Cache) {
	for _, e := range t.Entries {
		switch {
		case e.Orig == nil:
			c.Put(e.P.SKU, 1, e.P.Clone())
		case !e.P.SameState(e.Orig):
			c.Put(e.P.SKU, e.Version+1, e.P.Clone())
		}
	}
}

// SKUs returns the skus of the products seen, in first-seen order.
func (t *Tx) SKUs() []string {
	skus := make([]string, len(t.Entries))
	for i, e := range t.Entries {
		skus[i] = e.P.SKU
	}
	return skus
}
