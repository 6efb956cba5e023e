// Package fakes holds working in-memory adapters for the ports that package service declares:
// a Store of products with optimistic concurrency control, and a Mailer that captures every mail.
// They are safe for concurrent use and serve the tests, the Gherkin scenarios and the simulator.
package fakes

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

func runHook(ctx context.Context, h *atomic.Pointer[service.CommitHook], w *work) {
	if f := h.Load(); f != nil && *f != nil {
		(*f)(ctx, w.skus())
	}
}

// Store is an in-memory service.Store. Each transaction works on its own copies of the products
// (copies share allocation sets, so they cost O(batches) however many lines a product holds);
// Commit applies all of a transaction's changes or none, and fails with service.ErrConcurrentUpdate
// when a product it saw was changed by any other commit since it was loaded. Batch references are
// unique across products, like a unique index.
//
// A transaction that ends with Commit and then Rollback (the unit of work's "begin, defer
// rollback, commit") gives its working memory back to the store for a later Begin: from then on
// the products it returned and the slice Seen returned are no longer the caller's, and the
// transaction itself fails every call with ErrTxDone (Seen returns nil, Rollback does nothing).
// A transaction that is only rolled back, or only committed, leaves its products to the caller.
type Store struct {
	beforeCommit, afterCommit atomic.Pointer[service.CommitHook]
	// free holds the working memory of ended transactions for Begin to reuse: each slot is
	// handed over whole by an atomic swap, so two callers never get the same work.
	free [freeSlots]atomic.Pointer[work]

	mu       sync.Mutex
	products map[string]*record // a record never changes while it is current; see record
	refs     map[string]string  // batch reference -> sku
	rev      uint64             // last revision handed out; revisions never repeat
	outbox   outboxTable
}

// freeSlots is how many ended transactions' work a store keeps for reuse: one per goroutine
// that runs units of work at once is enough; more concurrent transactions allocate theirs.
const freeSlots = 4

// record is a stored product's state (its sku is the map's key), with its batches behind
// pointers that nothing changes once they are stored, so that a commit keeps the batches it did
// not change. A commit writes it, in the transaction that loaded the product when there is one.
//
// Its batches slice is cleared, under the store's lock, when a commit stores a newer record of
// the product: only the current record of a product is ever read (under the lock), and a
// superseded record that a current one still points into (its changed batch) must not keep its
// own, older batches alive, nor they theirs, all the way back.
type record struct {
	version int
	batches []*domain.Batch // never changed while the record is current, nor the batches they point to
	rev     uint64
}

// view returns the product of sku that r holds, sharing r's batches, to read or to clone, never
// to change.
func (r *record) view(sku string) domain.Product {
	return domain.Product{SKU: sku, VersionNumber: r.version, Batches: r.batches}
}

// load returns a new product of sku with r's state and no events. It must be called with the
// store's lock held, while r is current.
func (r *record) load(sku string) *domain.Product {
	v := r.view(sku)
	return v.Clone()
}

var _ service.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{products: map[string]*record{}, refs: map[string]string{}}
}

// Begin starts a transaction. It never fails.
func (s *Store) Begin(context.Context) (service.Tx, error) {
	w := s.takeWork()
	return &tx{w: w}, nil
}

// takeWork returns the work of an ended transaction, or a new one.
func (s *Store) takeWork() *work {
	for i := range s.free {
		slot := &s.free[i]
		if w := slot.Load(); w != nil && slot.CompareAndSwap(w, nil) {
			return w
		}
	}
	w := &work{store: s}
	w.entries, w.seen = w.firstEntry[:0], w.firstSeen[:0]
	return w
}

// giveBack clears w and keeps it for a later Begin, if a slot is free.
func (s *Store) giveBack(w *work) {
	*w = work{store: s}
	w.entries, w.seen = w.firstEntry[:0], w.firstSeen[:0]
	for i := range s.free {
		if s.free[i].CompareAndSwap(nil, w) {
			return
		}
	}
}

// Product returns a copy of the stored product with the sku.
func (s *Store) Product(sku string) (*domain.Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.products[sku]
	if !ok {
		return nil, false
	}
	return r.load(sku), true
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
		touched.batches = slices.Clone(r.batches) // r's are cleared when a commit supersedes touched
		touched.rev = s.rev
		s.products[sku] = &touched
		clear(r.batches)
	}
	return ok
}

// tx is what Begin hands out: a handle on the transaction's work, and the memory its commit
// stores the product of the work's room in. Begin allocates it and nothing reuses it, so a
// handle kept after the transaction ended can tell (its work is nil) and never reaches the
// transaction that reuses the work; and what the store keeps of a commit (the record, the
// changed batch) and the events handed to the bus after Rollback stay where they are.
type tx struct {
	w *work // nil once Rollback after Commit gave the work back to the store

	events  [1]domain.Event // the room's product's events: room for the event of one allocation
	rec     record          // what the commit stores for the room's product; its batches are stored's
	stored  [roomBatches]*domain.Batch
	changed domain.Batch // the first batch the commit stores that is not the loaded one
}

// work is a transaction's working memory: its entries and room for its first product's copy.
// Store.giveBack clears it for the next transaction.
type work struct {
	store     *Store
	entries   []entry
	seen      []*domain.Product
	done      bool // after Commit or Rollback
	committed bool // Commit was called: Rollback gives the work back
	roomUsed  bool // product holds a copy

	// Most transactions see one product: room for it here saves two allocations per
	// transaction, and room for its copy (when the product fits it) a few more.
	firstEntry [1]entry
	firstSeen  [1]*domain.Product
	product    domain.Product
	batches    [roomBatches]*domain.Batch
	copies     [roomBatches]domain.Batch
}

// roomBatches is how many batches a transaction's room holds: the simulator's products have 3.
const roomBatches = 3

type entry struct {
	p      *domain.Product // the transaction's copy
	orig   *record         // what p was loaded from, at its revision; nil for an added product
	inRoom bool            // p is the work's product, and its commit may store into the tx
}

// open returns the transaction's work, or ErrTxDone once it is over.
func (t *tx) open() (*work, error) {
	if t.w == nil || t.w.done {
		return nil, ErrTxDone
	}
	return t.w, nil
}

// copyOf returns the transaction's copy of the stored product r of sku, in the work's room for the
// first product that fits it, and whether it is there; else a new product. It must be called
// with the store's lock held, while r is current.
func (t *tx) copyOf(w *work, sku string, r *record) (*domain.Product, bool) {
	n := len(r.batches)
	if w.roomUsed || n > roomBatches {
		return r.load(sku), false
	}
	w.roomUsed = true
	for i, b := range r.batches {
		w.copies[i] = *b // copying a Batch value shares its lines, as Clone does
		w.batches[i] = &w.copies[i]
	}
	w.product = domain.Product{SKU: sku, VersionNumber: r.version, Batches: w.batches[:n], Events: t.events[:0]}
	return &w.product, true
}

// snapshot returns a record of p's state (events aside) at revision rev. A batch that is the same
// as the one at its place in orig (the record p was loaded from, if any) is kept; the others are
// copied. When into is not nil and p has at most roomBatches batches, the record and the first
// batch copied are into's; else they are new. Copying a Batch value shares its lines, as Clone
// does.
func snapshot(p *domain.Product, orig *record, into *tx, rev uint64) *record {
	var r *record
	var changed *domain.Batch
	if n := len(p.Batches); into != nil && n <= roomBatches {
		r, changed = &into.rec, &into.changed
		r.batches = into.stored[:n]
	} else {
		r = &record{batches: make([]*domain.Batch, n)}
	}
	r.version, r.rev = p.VersionNumber, rev
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

func (w *work) find(sku string) (*domain.Product, bool) {
	for i := range w.entries {
		e := &w.entries[i]
		if e.p.SKU == sku {
			return e.p, true
		}
	}
	return nil, false
}

func (t *tx) Add(_ context.Context, p *domain.Product) error {
	w, err := t.open()
	if err != nil {
		return err
	}
	if _, ok := w.find(p.SKU); ok {
		return fmt.Errorf("add product %s: already in this transaction", p.SKU)
	}
	w.entries = append(w.entries, entry{p: p})
	w.seen = append(w.seen, p)
	return nil
}

func (t *tx) Get(_ context.Context, sku string) (*domain.Product, error) {
	w, err := t.open()
	if err != nil {
		return nil, err
	}
	if p, ok := w.find(sku); ok {
		return p, nil
	}
	s := w.store
	s.mu.Lock()
	r, ok := s.products[sku]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("product %s: %w", sku, service.ErrNotFound)
	}
	p, inRoom := t.copyOf(w, sku, r)
	s.mu.Unlock()
	w.entries = append(w.entries, entry{p: p, orig: r, inRoom: inRoom})
	w.seen = append(w.seen, p)
	return p, nil
}

func (t *tx) GetByBatchRef(ctx context.Context, ref string) (*domain.Product, error) {
	w, err := t.open()
	if err != nil {
		return nil, err
	}
	for i := range w.entries {
		e := &w.entries[i]
		if _, ok := e.p.Batch(ref); ok {
			return e.p, nil
		}
	}
	w.store.mu.Lock()
	sku, ok := w.store.refs[ref]
	w.store.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("batch %s: %w", ref, service.ErrNotFound)
	}
	return t.Get(ctx, sku)
}

func (t *tx) Seen() []*domain.Product {
	if t.w == nil {
		return nil
	}
	return t.w.seen
}

// Rollback ends the transaction. After Commit it gives the transaction's work back to the store.
func (t *tx) Rollback() {
	w := t.w
	if w == nil {
		return
	}
	w.done = true
	if w.committed {
		t.w = nil
		w.store.giveBack(w)
	}
}

func (t *tx) Commit(ctx context.Context) error {
	w, err := t.open()
	if err != nil {
		return err
	}
	w.done, w.committed = true, true
	runHook(ctx, &w.store.beforeCommit, w)
	err = t.apply(w)
	for i := range w.entries {
		// The loaded records may lie in the transactions that stored them: a transaction the
		// store keeps must not keep its work's records too.
		w.entries[i].orig = nil
	}
	if err != nil {
		return err
	}
	runHook(ctx, &w.store.afterCommit, w)
	return nil
}

func (t *tx) apply(w *work) error {
	s := w.store
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range w.entries {
		e := &w.entries[i]
		cur, exists := s.products[e.p.SKU]
		switch {
		case e.orig == nil && exists:
			return fmt.Errorf("commit: product %s was added by another commit: %w", e.p.SKU, service.ErrConcurrentUpdate)
		case e.orig != nil && (!exists || cur != e.orig):
			return fmt.Errorf("commit: product %s changed since it was loaded: %w", e.p.SKU, service.ErrConcurrentUpdate)
		}
		for _, b := range e.p.Batches {
			if owner, taken := s.refs[b.Reference]; taken && owner != e.p.SKU {
				return fmt.Errorf("commit: batch %s of %s: %w: held by %s", b.Reference, e.p.SKU, domain.ErrDuplicateBatch, owner)
			}
		}
	}
	for i := range w.entries {
		e := &w.entries[i]
		if e.orig != nil && e.unchanged() {
			continue // read only: keep its revision so that readers do not conflict with each other
		}
		var into *tx
		if e.inRoom {
			into = t
		}
		s.rev++
		r := snapshot(e.p, e.orig, into, s.rev)
		s.products[e.p.SKU] = r
		for _, b := range r.batches {
			s.refs[b.Reference] = e.p.SKU
		}
		if e.orig != nil {
			clear(e.orig.batches) // superseded: see record
		}
	}
	if s.outbox.enabled {
		for i := range w.entries {
			e := &w.entries[i]
			s.outbox.add(e.p.Events)
		}
	}
	return nil
}

// unchanged reports whether the loaded product p still holds the state it was loaded with.
func (e *entry) unchanged() bool {
	orig := e.orig.view(e.p.SKU)
	return e.p.SameState(&orig)
}

func (w *work) skus() []string {
	skus := make([]string, len(w.entries))
	for i, e := range w.entries {
		skus[i] = e.p.SKU
	}
	return skus
}
