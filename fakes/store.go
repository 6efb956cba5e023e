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
	// batches is how many batches the last product loaded had: Begin gives the next transaction
	// room for a product of that size.
	batches atomic.Int32

	mu       sync.Mutex
	products map[string]*record // records never change once stored
	refs     map[string]string  // batch reference -> sku
	rev      uint64             // last revision handed out; revisions never repeat
	outbox   outboxTable
}

// record is a stored product: its state, with its batches behind pointers that nothing changes
// once they are stored, so that a commit keeps the batches it did not change. A commit writes
// it, in the room of the transaction that loaded the product when there is one.
type record struct {
	sku     string
	version int
	batches []*domain.Batch // never changed once stored, nor the batches they point to
	rev     uint64
}

// view returns a product that shares r's batches, to read or to clone, never to change.
func (r *record) view() domain.Product {
	return domain.Product{SKU: r.sku, VersionNumber: r.version, Batches: r.batches}
}

// load returns a new product with r's state and no events.
func (r *record) load() *domain.Product {
	v := r.view()
	return v.Clone()
}

var _ service.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{products: map[string]*record{}, refs: map[string]string{}}
}

// Begin starts a transaction. It never fails.
func (s *Store) Begin(context.Context) (service.Tx, error) {
	var t *tx
	switch n := s.batches.Load(); {
	case n <= 1:
		one := new(txOne)
		t = &one.tx
		t.room = &one.room
	case n <= fewBatches:
		few := new(txFew)
		t = &few.tx
		t.room = &few.room
	default:
		t = new(tx)
	}
	t.store = s
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
	return r.load(), true
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
	if r, ok := s.products[sku]; ok {
		return r.rev
	}
	return 0
}

// Touch gives the product a new revision without changing it, as if another writer had committed:
// every transaction that loaded it before will fail to commit. It reports whether the product exists.
func (s *Store) Touch(sku string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.products[sku]
	if ok {
		s.rev++
		touched := *r
		touched.rev = s.rev
		s.products[sku] = &touched
	}
	return ok
}

type tx struct {
	store   *Store
	entries []entry
	seen    []*domain.Product
	done    bool
	// roomUsed tells whether room holds a product; beside done, so that the transaction fits a
	// smaller size class.
	roomUsed bool

	// Most transactions see one product: room for it here saves two allocations per
	// transaction, and room for its copy (room, when the product fits it) a few more.
	firstEntry [1]entry
	firstSeen  [1]*domain.Product
	room       filler // nil when there is none
}

// txOne and txFew are a transaction with room for a product of one batch, or of a few.
type (
	txOne struct {
		tx
		room oneRoom
	}
	txFew struct {
		tx
		room fewRoom
	}
)

// fewBatches is how many batches txFew has room for: the simulator's products have 3.
const fewBatches = 3

// room is memory for a transaction's copy of a product and for the record its commit stores:
// with it, load and commit of one product allocate nothing. The room of a committed transaction
// is the store's from then on: nothing writes its record or changed batch again.
type room struct {
	product domain.Product
	events  [1]domain.Event // for the event of one allocation
	changed domain.Batch    // the first batch the commit stores that is not the loaded one
	rec     record          // what the commit stores; its batches are the room's
}

// filler is a room with its arrays: fill copies the record into it and returns the room, or
// false when the product has more batches than the room.
type filler interface {
	fill(r *record) (*room, bool)
}

type (
	oneRoom struct {
		room
		batches [1]*domain.Batch
		copies  [1]domain.Batch
		stored  [1]*domain.Batch
	}
	fewRoom struct {
		room
		batches [fewBatches]*domain.Batch
		copies  [fewBatches]domain.Batch
		stored  [fewBatches]*domain.Batch
	}
)

func (m *oneRoom) fill(r *record) (*room, bool) {
	return m.room.fill(r, m.batches[:], m.copies[:], m.stored[:])
}

func (m *fewRoom) fill(r *record) (*room, bool) {
	return m.room.fill(r, m.batches[:], m.copies[:], m.stored[:])
}

// fill makes m.product a copy of r in the room's arrays, whose length is its capacity.
// Copying a Batch value shares its lines, as Clone does.
func (m *room) fill(r *record, batches []*domain.Batch, copies []domain.Batch, stored []*domain.Batch) (*room, bool) {
	n := len(r.batches)
	if n > len(batches) {
		return nil, false
	}
	for i, b := range r.batches {
		copies[i] = *b
		batches[i] = &copies[i]
	}
	m.product = domain.Product{SKU: r.sku, VersionNumber: r.version, Batches: batches[:n], Events: m.events[:0]}
	m.rec.batches = stored[:n]
	return m, true
}

// copyOf returns the transaction's copy of the stored product r, in the transaction's room for
// the first product that fits it, and that room; else a new product and no room.
func (t *tx) copyOf(r *record) (*domain.Product, *room) {
	if t.room != nil && !t.roomUsed {
		if m, ok := t.room.fill(r); ok {
			t.roomUsed = true
			return &m.product, m
		}
	}
	return r.load(), nil
}

// snapshot returns a record of p's state (events aside) at revision rev. A batch that is the same
// as the one at its place in orig (the record p was loaded from, if any) is kept; the others are
// copied. When p is its room's product and still has the room's batch count, the record and the
// first batch copied are the room's; else they are new. Copying a Batch value shares its lines,
// as Clone does.
func snapshot(p *domain.Product, orig *record, m *room, rev uint64) *record {
	var r *record
	var changed *domain.Batch
	if m != nil && len(m.rec.batches) == len(p.Batches) {
		r, changed = &m.rec, &m.changed
	} else {
		r = &record{batches: make([]*domain.Batch, len(p.Batches))}
	}
	r.sku, r.version, r.rev = p.SKU, p.VersionNumber, rev
	for i, b := range p.Batches {
		switch {
		case orig != nil && i < len(orig.batches) && b.SameState(orig.batches[i]):
			r.batches[i] = orig.batches[i]
		case changed != nil:
			*changed = *b
			r.batches[i] = changed
			changed = nil
		default:
			c := *b
			r.batches[i] = &c
		}
	}
	return r
}

type entry struct {
	p    *domain.Product // the transaction's copy
	orig *record         // what p was loaded from, at its revision; nil for an added product
	room *room           // where p lies, if in the transaction's room
}

func (t *tx) find(sku string) (*domain.Product, bool) {
	for i := range t.entries {
		e := &t.entries[i]
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
	if n := int32(len(r.batches)); t.store.batches.Load() != n {
		t.store.batches.Store(n)
	}
	p, m := t.copyOf(r)
	t.entries = append(t.entries, entry{p: p, orig: r, room: m})
	t.seen = append(t.seen, p)
	return p, nil
}

func (t *tx) GetByBatchRef(ctx context.Context, ref string) (*domain.Product, error) {
	if t.done {
		return nil, ErrTxDone
	}
	for i := range t.entries {
		e := &t.entries[i]
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
	err := t.apply()
	for i := range t.entries {
		// The loaded records may lie in the room of the transactions that stored them: a
		// transaction whose room the store keeps must not keep those transactions too, nor
		// they theirs, all the way back.
		t.entries[i].orig = nil
	}
	if err != nil {
		return err
	}
	runHook(ctx, &t.store.afterCommit, t)
	return nil
}

func (t *tx) apply() error {
	s := t.store
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range t.entries {
		e := &t.entries[i]
		cur, exists := s.products[e.p.SKU]
		switch {
		case e.orig == nil && exists:
			return fmt.Errorf("commit: product %s was added by another commit: %w", e.p.SKU, service.ErrConcurrentUpdate)
		case e.orig != nil && (!exists || cur.rev != e.orig.rev):
			return fmt.Errorf("commit: product %s changed since it was loaded: %w", e.p.SKU, service.ErrConcurrentUpdate)
		}
		for _, b := range e.p.Batches {
			if owner, taken := s.refs[b.Reference]; taken && owner != e.p.SKU {
				return fmt.Errorf("commit: batch %s of %s: %w: held by %s", b.Reference, e.p.SKU, domain.ErrDuplicateBatch, owner)
			}
		}
	}
	for i := range t.entries {
		e := &t.entries[i]
		if e.orig != nil && e.unchanged() {
			continue // read only: keep its revision so that readers do not conflict with each other
		}
		s.rev++
		r := snapshot(e.p, e.orig, e.room, s.rev)
		s.products[e.p.SKU] = r
		for _, b := range r.batches {
			s.refs[b.Reference] = e.p.SKU
		}
	}
	if s.outbox.enabled {
		for i := range t.entries {
			e := &t.entries[i]
			s.outbox.add(e.p.Events)
		}
	}
	return nil
}

// unchanged reports whether the loaded product p still holds the state it was loaded with.
func (e *entry) unchanged() bool {
	orig := e.orig.view()
	return e.p.SameState(&orig)
}

func (t *tx) skus() []string {
	skus := make([]string, len(t.entries))
	for i, e := range t.entries {
		skus[i] = e.p.SKU
	}
	return skus
}
