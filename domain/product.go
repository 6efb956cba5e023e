package domain

import (
	"fmt"
	"slices"
)

// Product is the aggregate: every batch of one sku. All changes to its batches go through it,
// and it records the events they cause in Events until the unit of work publishes them.
// VersionNumber goes up by one on every successful allocation.
//
// A Product is not safe for concurrent use; each unit of work works on its own Clone.
type Product struct {
	SKU           string
	Batches       []*Batch
	VersionNumber int
	Events        []Event

	// ids and cause identify the events recorded from now on (see StampEvents); not stored state.
	ids   IDSource
	cause string
}

// StampEvents makes every event that p records from now on carry a Meta: an ID from ids and
// causationID, the ID of the message being handled. A unit of work sets it on a product it is
// about to change, so that each event is built once, already identified, instead of being
// recorded bare and copied with its Meta before commit. A nil ids stops it: events are recorded
// with an empty Meta again, the default. It is not part of the product's state: Clone and
// SameState ignore it.
func (p *Product) StampEvents(ids IDSource, causationID string) {
	p.ids, p.cause = ids, causationID
}

// meta returns the Meta of an event p records now: empty unless StampEvents set a source.
func (p *Product) meta() Meta {
	if p.ids == nil {
		return Meta{}
	}
	return Meta{ID: p.ids.NextID(), CausationID: p.cause}
}

// NewProduct returns a product with the given batches and no pending events. It does not validate.
func NewProduct(sku string, batches []*Batch) *Product {
	return &Product{SKU: sku, Batches: batches}
}

// Clone returns a copy of the product's stored state with no pending events. Changing the copy
// never changes p. It costs O(len(Batches)), not O(allocations): allocation sets are shared.
func (p *Product) Clone() *Product {
	c, copies := newClone(len(p.Batches))
	c.SKU, c.VersionNumber = p.SKU, p.VersionNumber
	for i, b := range p.Batches {
		copies[i] = *b
		c.Batches[i] = &copies[i]
	}
	return c
}

// newClone returns an empty product whose Batches has length n, and n batches to point them
// at. A unit of work clones a product twice (on load and on commit) and most products have one
// batch, so that case takes one allocation instead of three.
func newClone(n int) (c *Product, copies []Batch) {
	if n == 1 {
		one := new(struct {
			product Product
			batches [1]*Batch
			copies  [1]Batch
			events  [1]Event // room for the event of one allocation
		})
		one.product.Batches = one.batches[:]
		one.product.Events = one.events[:0]
		return &one.product, one.copies[:]
	}
	return &Product{Batches: make([]*Batch, n)}, make([]Batch, n)
}

// SameState reports whether p and o certainly hold the same stored state (sku, version, batches
// and their allocations), ignoring pending events. It is O(len(Batches)): it compares allocation
// sets by identity, so a Clone that was not changed is the same, and a changed one is not.
func (p *Product) SameState(o *Product) bool {
	return p.SKU == o.SKU && p.VersionNumber == o.VersionNumber &&
		slices.EqualFunc(p.Batches, o.Batches, (*Batch).SameState)
}

// Batch returns the product's batch with the reference, if any.
func (p *Product) Batch(ref string) (*Batch, bool) {
	for _, b := range p.Batches {
		if b.Reference == ref {
			return b, true
		}
	}
	return nil, false
}

// AddBatch appends a batch of the product's sku after validating it. The error wraps
// ErrInvalidBatch, ErrSKUMismatch or ErrDuplicateBatch, and then nothing changed.
func (p *Product) AddBatch(b *Batch) error {
	if err := ValidateBatch(b.Reference, b.SKU, b.purchased); err != nil {
		return err
	}
	if b.SKU != p.SKU {
		return fmt.Errorf("add batch %s: %w: batch sku %s, product sku %s", b.Reference, ErrSKUMismatch, b.SKU, p.SKU)
	}
	if _, ok := p.Batch(b.Reference); ok {
		return fmt.Errorf("add batch %s: %w", b.Reference, ErrDuplicateBatch)
	}
	p.Batches = append(p.Batches, b)
	return nil
}

// Allocate allocates the line to the preferred batch that can take it and returns that batch's
// reference. Warehouse stock (zero ETA) is preferred, then the earliest ETA; batches with equal
// ETAs keep their order. On success VersionNumber goes up by one and an Allocated event is recorded.
//
// When no batch can take the line, Allocate records one OutOfStock event and returns "" and an
// error wrapping ErrOutOfStock; VersionNumber does not change.
//
// An order is identified by its OrderID and SKU: sending an order that already holds stock again
// with the same quantity returns its batch and changes nothing; with another quantity it fails with
// ErrOrderConflict. An invalid line (ErrInvalidOrderLine) or a line of another sku
// (ErrSKUMismatch) changes nothing and records no event.
func (p *Product) Allocate(line OrderLine) (batchRef string, err error) {
	if err := line.Validate(); err != nil {
		return "", fmt.Errorf("allocate order %q: %w", line.OrderID, err)
	}
	if line.SKU != p.SKU {
		return "", fmt.Errorf("allocate order %q: %w: line sku %s, product sku %s", line.OrderID, ErrSKUMismatch, line.SKU, p.SKU)
	}
	hash := keyHash(line.OrderID, line.SKU)
	var best *Batch
	added := false
	if len(p.Batches) == 1 { // the common product: look up and append under one lock
		b := p.Batches[0]
		qty, held, ok := b.addUnlessHeld(line, hash)
		if held {
			return heldResult(b, line, qty)
		}
		if ok {
			best, added = b, true
		}
	} else {
		for _, b := range p.Batches {
			if qty, held := b.held(hash, line.OrderID, line.SKU); held {
				return heldResult(b, line, qty)
			}
			if b.fits(line) && (best == nil || b.prefers(best)) { // line is valid: checked above
				best = b
			}
		}
	}
	if best == nil {
		p.Events = append(p.Events, OutOfStock{Meta: p.meta(), SKU: p.SKU, OrderID: line.OrderID, Qty: line.Qty})
		return "", fmt.Errorf("allocate order %q: %w for %s", line.OrderID, ErrOutOfStock, line.SKU)
	}
	if !added {
		best.add(line, hash) // best can take the line and no batch holds its order: checked above
	}
	p.VersionNumber++
	p.Events = append(p.Events, Allocated{Meta: p.meta(), OrderID: line.OrderID, SKU: line.SKU, Qty: line.Qty, BatchRef: best.Reference})
	return best.Reference, nil
}

// heldResult is what Allocate returns for a line whose order b holds with qty: b's reference
// when the quantities agree, else an error wrapping ErrOrderConflict.
func heldResult(b *Batch, line OrderLine, qty int) (string, error) {
	if qty != line.Qty {
		return "", fmt.Errorf("allocate order %q: %w: holds %d in batch %s, asked for %d",
			line.OrderID, ErrOrderConflict, qty, b.Reference, line.Qty)
	}
	return b.Reference, nil
}

// Allocated returns the quantity held by all batches, so a check can compare it with orders.
func (p *Product) Allocated() int {
	total := 0
	for _, b := range p.Batches {
		total += b.allocated
	}
	return total
}
