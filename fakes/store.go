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

// record is a stored product: its state, with its batches behind pointers that nothing changes
// once they are stored, so that a commit keeps the batches it did not change and stores the
// record in the map's own memory.
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
	// firstUsed and storedUsed tell whether first and stored hold a product's state; beside done,
	// so that the transaction fits a smaller size class.
	firstUsed, storedUsed bool

	// Most transactions see one product with a few batches: room for it here saves two
	// allocations per transaction, and room for its copy a few more (see copyOf), and room for
	// what its commit stores the rest (see snapshot). A committed transaction's room for the
	// stored state is the store's from then on: nothing writes it again.
	firstEntry [1]entry
	firstSeen  [1]*domain.Product
	first      struct {
		product domain.Product
		batches [roomBatches]*domain.Batch
		copies  [roomBatches]domain.Batch
		events  [1]domain.Event
	}
	stored struct {
		batches [roomBatches]*domain.Batch
		changed domain.Batch
	}
}

// roomBatches is how many batches of a product a transaction has room for: the simulator's
// products have 3.
const roomBatches = 3

// copyOf returns the transaction's copy of the stored product r: a new product, or for the first
// product of at most roomBatches batches that the transaction loads, the same copy made in the
// transaction's own memory. Copying a Batch value shares its lines, as Clone does.
func (t *tx) copyOf(r *record) *domain.Product {
	f := &t.first
	if t.firstUsed || len(r.batches) > roomBatches {
		return r.load()
	}
	t.firstUsed = true
	for i, b := range r.batches {
		f.copies[i] = *b
		f.batches[i] = &f.copies[i]
	}
	f.product = domain.Product{SKU: r.sku, VersionNumber: r.version, Batches: f.batches[:len(r.batches)], Events: f.events[:0]}
	return &f.product
}

// snapshot returns a record of p's state (events aside) at revision rev. A batch that is the same
// as the one at its place in orig (the record p was loaded from, if any) is kept; the others are
// copied, the first of them, for the first product of at most roomBatches batches, into the
// transaction's memory. Copying a Batch value shares its lines, as Clone does.
func (t *tx) snapshot(p *domain.Product, orig *record, rev uint64) record {
	r := record{sku: p.SKU, version: p.VersionNumber, rev: rev}
	st := &t.stored
	own := !t.storedUsed && len(p.Batches) <= roomBatches
	if own {
		t.storedUsed = true
		r.batches = st.batches[:len(p.Batches)]
	} else {
		r.batches = make([]*domain.Batch, len(p.Batches))
	}
	for i, b := range p.Batches {
		switch {
		case orig != nil && i < len(orig.batches) && b.SameState(orig.batches[i]):
			r.batches[i] = orig.batches[i]
		case own:
			own = false
			st.changed = *b
			r.batches[i] = &st.changed
		default:
			c := *b
			r.batches[i] = &c
		}
	}
	return r
}

type entry struct {
	p      *domain.Product // the transaction's copy
	loaded bool            // whether p was loaded (else added)
	orig   record          // what p was loaded from, at its revision; zero for an added product
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
	t.entries = append(t.entries, entry{loaded: true, orig: r})
	e := &t.entries[len(t.entries)-1] // in the transaction's memory: r itself would move to the heap
	p := t.copyOf(&e.orig)
	e.p = p
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
		t.entries[i].orig = record{}
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
		case !e.loaded && exists:
			return fmt.Errorf("commit: product %s was added by another commit: %w", e.p.SKU, service.ErrConcurrentUpdate)
		case e.loaded && (!exists || cur.rev != e.orig.rev):
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
		if e.loaded && e.unchanged() {
			continue // read only: keep its revision so that readers do not conflict with each other
		}
		s.rev++
		var orig *record
		if e.loaded {
			orig = &e.orig
		}
		r := t.snapshot(e.p, orig, s.rev)
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
