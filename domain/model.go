// Package domain holds the allocation model of "Architecture Patterns with Python", chapter 8:
// order lines, batches of stock, the Product aggregate and the events it records.
//
// It imports only the standard library. Constructors do not validate; Product's methods do,
// so a rejected call changes nothing: no allocation, no version bump, no event.
package domain

import (
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxQty is the largest quantity an order line may ask for. Bounding it keeps every sum of
// quantities far from integer overflow.
const MaxQty = 1_000_000_000

var (
	// ErrOutOfStock is wrapped by the error Product.Allocate returns when no batch can take the line.
	ErrOutOfStock = errors.New("out of stock")
	// ErrInvalidOrderLine is wrapped by errors about a line that can never be allocated: an order
	// id or sku that is not a valid identifier (empty, only white space, holding a control character or not valid UTF-8), or a quantity outside 1..MaxQty.
	ErrInvalidOrderLine = errors.New("invalid order line")
	// ErrOrderConflict is wrapped when an order already holds stock with another quantity.
	ErrOrderConflict = errors.New("order already allocated with another quantity")
	// ErrSKUMismatch is wrapped when a line or batch names another product's sku.
	ErrSKUMismatch = errors.New("sku does not match product")
	// ErrDuplicateBatch is wrapped when a batch reference is already taken.
	ErrDuplicateBatch = errors.New("duplicate batch reference")
	// ErrUnknownBatch is wrapped when a batch reference names no batch of the product.
	ErrUnknownBatch = errors.New("unknown batch reference")
	// ErrInvalidBatch is wrapped by errors about a batch that cannot be stored: a reference or
	// sku that is not a valid identifier (empty, only white space, holding a control character or not valid UTF-8), or a quantity outside 0..MaxQty.
	ErrInvalidBatch = errors.New("invalid batch")
)

// OrderLine is one line of a customer order. It is a value: two lines with the same fields
// are the same line. An order is identified by its OrderID and SKU together.
type OrderLine struct {
	OrderID, SKU string
	Qty          int
}

// checkID reports why s cannot identify an order, a sku or a batch (what says which), or nil: it
// is empty or only white space, holds a control character (NUL, a newline, ...), or is not valid
// UTF-8. Such identifiers print as something else, or as nothing, in logs, mails and reports. The
// common all-ASCII identifier is checked byte by byte, without decoding.
func checkID(what, s string) error {
	blank := true
	i := 0
	// Eight bytes at a time while they are ASCII and none is a control character. A byte below
	// 0x20 or from 0xa0 up sets its top bit in w-0x20…20 (the lowest such byte takes no borrow:
	// only a byte below 0x20 makes one), and a byte from 0x7f to 0xfe does in w+0x01…01 (0xff
	// is from 0xa0). A word with any of them is left to the byte loop, which is exact.
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	const spaces = 0x20 * ones
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if ((w-spaces)|(w+ones))&tops != 0 {
			break
		}
		blank = blank && w == spaces
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return checkUnicodeID(what, s)
		}
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%s %q has control character %q at byte %d", what, s, c, i)
		}
		blank = blank && c == ' '
	}
	if blank {
		return blankID(what, s)
	}
	return nil
}

// checkUnicodeID is checkID for an identifier that is not all ASCII.
func checkUnicodeID(what, s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s %q is not valid UTF-8", what, s)
	}
	blank := true
	for i, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q has control character %q at byte %d", what, s, r, i)
		}
		blank = blank && unicode.IsSpace(r)
	}
	if blank {
		return blankID(what, s)
	}
	return nil
}

func blankID(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	return fmt.Errorf("%s %q is only white space", what, s)
}

// Validate reports why the line can never be allocated, or nil. The error wraps ErrInvalidOrderLine.
func (l OrderLine) Validate() error {
	if err := checkID("order id", l.OrderID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOrderLine, err)
	}
	if err := checkID("sku", l.SKU); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOrderLine, err)
	}
	switch {
	case l.Qty <= 0 || l.Qty > MaxQty:
		return fmt.Errorf("%w: qty must be between 1 and %d, got %d", ErrInvalidOrderLine, MaxQty, l.Qty)
	}
	return nil
}

// Batch is stock of one sku that order lines are allocated to: on hand in the warehouse when
// ETA is zero, otherwise arriving at ETA. A batch is identified by its Reference.
//
// Allocations are a persistent set: copying a Batch value shares them in O(1), and changing a
// copy never changes the original. Copies may be used and changed in different goroutines; one
// Batch value is not safe for concurrent mutation.
type Batch struct {
	Reference string
	SKU       string
	ETA       time.Time

	purchased int
	allocated int
	lines     lineView
	count     int
}

// NewBatch returns a batch of qty units of sku. A zero eta means the stock is in the warehouse.
// It does not validate; see ValidateBatch.
func NewBatch(ref, sku string, qty int, eta time.Time) *Batch {
	return &Batch{Reference: ref, SKU: sku, ETA: eta, purchased: qty}
}

// ValidateBatch reports why a batch with these fields cannot be stored, or nil. The error wraps ErrInvalidBatch.
func ValidateBatch(ref, sku string, qty int) error {
	if err := checkID("reference", ref); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	if err := checkID("sku", sku); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidBatch, err)
	}
	switch {
	case qty < 0 || qty > MaxQty:
		return fmt.Errorf("%w: qty must be between 0 and %d, got %d", ErrInvalidBatch, MaxQty, qty)
	}
	return nil
}

// PurchasedQuantity is the quantity the batch was bought with (or last changed to).
func (b *Batch) PurchasedQuantity() int { return b.purchased }

// AllocatedQuantity is the sum of the quantities of the lines allocated to the batch.
func (b *Batch) AllocatedQuantity() int { return b.allocated }

// AvailableQuantity is what is left to allocate. It is negative when the batch is over-allocated.
func (b *Batch) AvailableQuantity() int { return b.purchased - b.allocated }

// Allocations is the number of lines allocated to the batch.
func (b *Batch) Allocations() int { return b.count }

// CanAllocate reports whether the line is valid, of the batch's sku and fits in what is available.
func (b *Batch) CanAllocate(line OrderLine) bool {
	return line.Validate() == nil && b.fits(line)
}

// fits is CanAllocate for a line that the caller has validated.
func (b *Batch) fits(line OrderLine) bool {
	return line.SKU == b.SKU && b.AvailableQuantity() >= line.Qty
}

// Allocate adds the line to the batch if it fits. Allocating a line the batch already holds, or
// one that does not fit, is a no-op. Since an order is identified by its OrderID and SKU, a line
// of an order the batch already holds is a no-op whatever its quantity.
func (b *Batch) Allocate(line OrderLine) {
	hash := keyHash(line.OrderID, line.SKU)
	if _, held := b.held(hash, line.OrderID, line.SKU); held || !b.CanAllocate(line) {
		return
	}
	b.add(line, hash)
}

// add allocates a line that the caller has checked: it fits and its order is not held. Product
// uses it so that one allocation hashes the key once and searches each batch once.
func (b *Batch) add(line OrderLine, hash uint64) {
	b.lines = b.lines.with(line, hash, false)
	b.allocated += line.Qty
	b.count++
}

// addUnlessHeld is held and, when the batch holds no line of the order and the line fits, add,
// looking the order up once under one hold of the log's lock. added says whether it added the
// line. The caller has validated the line; hash is keyHash(line.OrderID, line.SKU).
func (b *Batch) addUnlessHeld(line OrderLine, hash uint64) (qty int, held, added bool) {
	if !b.fits(line) {
		qty, held = b.held(hash, line.OrderID, line.SKU)
		return qty, held, false
	}
	qty, held, lines := b.lines.heldOrWith(line, hash)
	if held {
		return qty, true, false
	}
	b.lines = lines
	b.allocated += line.Qty
	b.count++
	return 0, false, true
}

// held returns the quantity of the line of the order (orderID, sku) that the batch holds, if
// any. hash is keyHash(orderID, sku).
func (b *Batch) held(hash uint64, orderID, sku string) (qty int, ok bool) {
	e, ok := b.lines.find(hash, orderID, sku)
	if !ok || e.tombstone {
		return 0, false
	}
	return int(e.qty), true
}

// Deallocate removes the line if the batch holds exactly that line; otherwise it is a no-op.
func (b *Batch) Deallocate(line OrderLine) {
	hash := keyHash(line.OrderID, line.SKU)
	if qty, held := b.held(hash, line.OrderID, line.SKU); !held || qty != line.Qty {
		return
	}
	b.lines = b.lines.with(line, hash, true)
	b.allocated -= line.Qty
	b.count--
}

// Holds returns the line of the order (orderID, sku) that the batch holds, if any.
func (b *Batch) Holds(orderID, sku string) (OrderLine, bool) {
	return b.lines.held(keyHash(orderID, sku), orderID, sku)
}

// Lines returns the allocated lines in allocation order, oldest first. It costs O(changes): every
// allocation and deallocation the batch went through.
func (b *Batch) Lines() []OrderLine { return b.lines.lines(b.count) }

// ChangesSince returns the lines b holds that since does not (added) and those since holds that
// b does not (removed), in the order of the changes, when b is since changed by allocating and
// deallocating: a copy of since, or of a copy of it, and so on. It costs O(changes since), not
// O(lines), so that a store can write only what a transaction changed. ok is false when b was
// not made from since that way (a batch built separately, or one that since was made from), and
// may be false when b's lines were compacted on the way (a copy whose lineage lost the end of the
// shared log to rival copies many times); then the caller must compare Lines.
func (b *Batch) ChangesSince(since *Batch) (added, removed []OrderLine, ok bool) {
	return b.lines.changes(since.lines)
}

// SameState reports whether b and o certainly hold the same stored state: reference, sku, ETA,
// purchased quantity and allocations. It is O(1): it compares the allocation sets by identity, so
// a copy that was not changed is the same, and it may say false for equal sets built separately.
// A store uses it to keep an unchanged batch's stored copy instead of copying it again.
func (b *Batch) SameState(o *Batch) bool {
	return b.Reference == o.Reference && b.SKU == o.SKU && b.ETA.Equal(o.ETA) &&
		b.purchased == o.purchased && b.lines == o.lines && b.count == o.count
}

// prefers reports whether b comes before o in allocation order: warehouse stock (zero ETA)
// first, then the earliest ETA.
func (b *Batch) prefers(o *Batch) bool {
	switch {
	case b.ETA.IsZero():
		return !o.ETA.IsZero()
	case o.ETA.IsZero():
		return false
	}
	return b.ETA.Before(o.ETA)
}
