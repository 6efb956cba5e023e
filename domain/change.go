package domain

import "fmt"

// ChangeBatchQuantity sets the purchased quantity of the batch with the reference. While the
// batch then holds more than it has, it deallocates lines one at a time, the most recently
// allocated first, and records a Deallocated event for each, so that a handler can allocate them
// again. Quantity 0 is valid: everything is deallocated.
//
// A quantity outside 0..MaxQty (ErrInvalidBatch) or an unknown reference (ErrUnknownBatch) is an
// error and changes nothing.
func (p *Product) ChangeBatchQuantity(ref string, qty int) error {
	if qty < 0 || qty > MaxQty {
		return fmt.Errorf("change batch %s: %w: qty must be between 0 and %d, got %d", ref, ErrInvalidBatch, MaxQty, qty)
	}
	b, ok := p.Batch(ref)
	if !ok {
		return fmt.Errorf("change batch %s of %s: %w", ref, p.SKU, ErrUnknownBatch)
	}
	b.purchased = qty
	// While over-allocated the batch holds a line, and each Deallocate gives one up, so lines
	// never runs out. It is listed (oldest first) only when needed: a rare, O(lines) operation.
	var lines []OrderLine
	for b.AvailableQuantity() < 0 {
		if lines == nil {
			lines = b.Lines()
		}
		l := lines[len(lines)-1]
		lines = lines[:len(lines)-1]
		b.Deallocate(l)
		p.Events = append(p.Events, Deallocated{Meta: p.meta(), OrderID: l.OrderID, SKU: l.SKU, Qty: l.Qty})
	}
	return nil
}
