// Package fakes holds working in-memory adapters for the ports that package service declares:
// a Store of products with optimistic concurrency control, and a Mailer that captures every mail.
// They are safe for concurrent use and serve the tests, the Gherkin scenarios and the simulator.
package fakes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// ErrTxDone is returned when a transaction is used after Commit or Rollback.
var ErrTxDone = errors.New("transaction already committed or rolled back")

// Hook is service.CommitHook: a store calls it at a point of a transaction's life, with the skus
// the transaction has seen. It runs on the transaction's goroutine without any store lock held, so
// it may block to force an interleaving (see Rendezvous) or change the store (see Store.Touch). It
// is an alias, so the fakes, sqlite and postgres stores' hook setters have the same signature.
type Hook = service.CommitHook

// SetBeforeCommit sets a hook that runs at the start of every Commit, after the work is done and
// before the store checks for conflicts: holding a transaction here forces "load, load, commit,
// commit". nil removes it. It is safe to call at any time; set it after seeding the store.
func (s *Store) SetBeforeCommit(h service.CommitHook) { s.beforeCommit.Store(&h) }

// SetAfterCommit sets a hook that runs after a Commit succeeded, before the unit of work
// publishes: the place where a crash "after commit, before publish" happens. nil removes it.
func (s *Store) SetAfterCommit(h service.CommitHook) { s.afterCommit.Store(&h) }

func runHook(ctx context.Context, h *atomic.Pointer[service.CommitHook], t *tx) {
	if f := h.Load(); f != nil && *f != nil {
		(*f)(ctx, t.skus())
	}
}

// Store is an in-memory service.Store. Each transaction works on its own copies of the products
// (copies share allocation sets, so they cost O(batches) however many lines a product holds);
// Commit applies all of a transaction's changes or none, and fails with service.ErrConcurrentUpdate
// when a product it saw was changed by any other commit since it was loaded. Batch references are
// unique across products, like a unique index.
type Store struct {
	beforeCommit, afterCommit atomic.Pointer[service.CommitHook]

	mu       sync.Mutex
	products map[string]record
	refs     map[string]string // batch reference -> sku
	rev      uint64            // last revision handed out; revisions never repeat
	outbox   outboxTable
}

type record struct {
	p   *domain.Product // never mutated once stored
	rev uint64
}

var _ service.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{products: map[string]record{}, refs: map[string]string{}}
}

// Begin starts a transaction. It never fails.
func (s *Store) Begin(context.Context) (service.Tx, error) {
	t := &tx{store: s}
	t.entries, t.seen = t.firstEntry[:0], t.firstSeen[:0]
	return t, nil
}

// Product returns a copy of the stored product with the sku.
func (s *Store) Product(sku string) (*domain.Product, bool) {
	s.mu.Lock()
	r, ok := s.products[sku]
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	return r.p.Clone(), true
}

// SKUs returns the skus of the stored products, sorted.
func (s *Store) SKUs() []string {
	s.mu.Lock()
	skus := make([]string, 0, len(s.products))
	for sku := range s.products {
		skus = append(skus, sku)
	}
	s.mu.Unlock()
	sort.Strings(skus)
	return skus
}

// Revision returns the store's revision of the product, which changes on every commit that
// changes it, and 0 when there is no such product.
func (s *Store) Revision(sku string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.products[sku].rev
}

// Touch gives the product a new revision without changing it, as if another writer had committed:
// every transaction that loaded it before will fail to commit. It reports whether the product exists.
func (s *Store) Touch(sku string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.products[sku]
	if ok {
		s.rev++
		r.rev = s.rev
		s.products[sku] = r
	}
	return ok
}

type tx struct {
	store   *Store
	entries []entry
	seen    []*domain.Product
	done    bool

	// Most transactions see one product: room for it here saves two allocations per transaction,
	// and room for its copy, when it has one batch, a third (see copyOf).
	firstEntry [1]entry
	firstSeen  [1]*domain.Product
	first      struct {
		used    bool
		product domain.Product
		batches [1]*domain.Batch
		batch   domain.Batch
		events  [1]domain.Event
	}
}

// copyOf returns the transaction's copy of the stored product p: p.Clone(), or for the first
// one-batch product the transaction loads, the same copy made in the transaction's own memory.
// Copying a Batch value shares its lines, as Clone does.
func (t *tx) copyOf(p *domain.Product) *domain.Product {
	f := &t.first
	if f.used || len(p.Batches) != 1 {
		return p.Clone()
	}
	f.used = true
	f.batch = *p.Batches[0]
	f.batches[0] = &f.batch
	f.product = domain.Product{SKU: p.SKU, VersionNumber: p.VersionNumber, Batches: f.batches[:], Events: f.events[:0]}
	return &f.product
}

type entry struct {
	p    *domain.Product // the transaction's copy
	orig *domain.Product // what it was loaded from; nil for an added product
	rev  uint64          // revision it was loaded at; 0 for an added product
}

func (t *tx) find(sku string) (*domain.Product, bool) {
	for _, e := range t.entries {
		if e.p.SKU == sku {
			return e.p, true
		}
	}
	return nil, false
}

func (t *tx) Add(_ context.Context, p *domain.Product) error {
	if t.done {
		return ErrTxDone
	}
	if _, ok := t.find(p.SKU); ok {
		return fmt.Errorf("add product %s: already in this transaction", p.SKU)
	}
	t.entries = append(t.entries, entry{p: p})
	t.seen = append(t.seen, p)
	return nil
}

func (t *tx) Get(_ context.Context, sku string) (*domain.Product, error) {
	if t.done {
		return nil, ErrTxDone
	}
	if p, ok := t.find(sku); ok {
		return p, nil
	}
	t.store.mu.Lock()
	r, ok := t.store.products[sku]
	t.store.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("product %s: %w", sku, service.ErrNotFound)
	}
	p := t.copyOf(r.p)
	t.entries = append(t.entries, entry{p: p, orig: r.p, rev: r.rev})
	t.seen = append(t.seen, p)
	return p, nil
}

func (t *tx) GetByBatchRef(ctx context.Context, ref string) (*domain.Product, error) {
	if t.done {
		return nil, ErrTxDone
	}
	for _, e := range t.entries {
		if _, ok := e.p.Batch(ref); ok {
			return e.p, nil
		}
	}
	t.store.mu.Lock()
	sku, ok := t.store.refs[ref]
	t.store.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("batch %s: %w", ref, service.ErrNotFound)
	}
	return t.Get(ctx, sku)
}

func (t *tx) Seen() []*domain.Product { return t.seen }

func (t *tx) Rollback() { t.done = true }

func (t *tx) Commit(ctx context.Context) error {
	if t.done {
		return ErrTxDone
	}
	t.done = true
	runHook(ctx, &t.store.beforeCommit, t)
	if err := t.apply(); err != nil {
		return err
	}
	runHook(ctx, &t.store.afterCommit, t)
	return nil
}

func (t *tx) apply() error {
	s := t.store
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range t.entries {
		cur, exists := s.products[e.p.SKU]
		switch {
		case e.orig == nil && exists:
			return fmt.Errorf("commit: product %s was added by another commit: %w", e.p.SKU, service.ErrConcurrentUpdate)
		case e.orig != nil && (!exists || cur.rev != e.rev):
			return fmt.Errorf("commit: product %s changed since it was loaded: %w", e.p.SKU, service.ErrConcurrentUpdate)
		}
		for _, b := range e.p.Batches {
			if owner, taken := s.refs[b.Reference]; taken && owner != e.p.SKU {
				return fmt.Errorf("commit: batch %s of %s: %w: held by %s", b.Reference, e.p.SKU, domain.ErrDuplicateBatch, owner)
			}
		}
	}
	for _, e := range t.entries {
		if e.orig != nil && e.p.SameState(e.orig) {
			continue // read only: keep its revision so that readers do not conflict with each other
		}
		s.rev++
		s.products[e.p.SKU] = record{p: e.p.Clone(), rev: s.rev}
		for _, b := range e.p.Batches {
			s.refs[b.Reference] = e.p.SKU
		}
	}
	if s.outbox.enabled {
		for _, e := range t.entries {
			s.outbox.add(e.p.Events)
		}
	}
	return nil
}

func (t *tx) skus() []string {
	skus := make([]string, len(t.entries))
	for i, e := range t.entries {
		skus[i] = e.p.SKU
	}
	return skus
}
