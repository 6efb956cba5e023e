package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

var today = time.Date(2026, time.March, 1, 0, 0, 0, 0, time.UTC)

// batchAndLine returns a batch of batchQty units of sku and a line of lineQty of the same sku.
func batchAndLine(sku string, batchQty, lineQty int) (*domain.Batch, domain.OrderLine) {
	return domain.NewBatch("batch-001", sku, batchQty, time.Time{}),
		domain.OrderLine{OrderID: "order-123", SKU: sku, Qty: lineQty}
}

func TestNewBatch(t *testing.T) {
	eta := today.Add(24 * time.Hour)
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 20, eta)

	assert.Equal(t, "batch-001", b.Reference)
	assert.Equal(t, "SMALL-TABLE", b.SKU)
	assert.True(t, eta.Equal(b.ETA), "ETA = %v, want %v", b.ETA, eta)
	assert.Equal(t, 20, b.PurchasedQuantity())
	assert.Equal(t, 0, b.AllocatedQuantity())
	assert.Equal(t, 20, b.AvailableQuantity())
	assert.Equal(t, 0, b.Allocations())
	assert.Empty(t, b.Lines())
}

func TestBatchAllocateReducesAvailableQuantity(t *testing.T) {
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 20, today)
	line := domain.OrderLine{OrderID: "order-ref", SKU: "SMALL-TABLE", Qty: 2}

	b.Allocate(line)

	assert.Equal(t, 18, b.AvailableQuantity(), "AvailableQuantity after Allocate(%+v) on a batch of 20", line)
	assert.Equal(t, 2, b.AllocatedQuantity())
	assert.Equal(t, 20, b.PurchasedQuantity(), "allocating must not change the purchased quantity")
	assert.Equal(t, 1, b.Allocations())
	assert.Equal(t, []domain.OrderLine{line}, b.Lines())
}

func TestBatchCanAllocate(t *testing.T) {
	tests := []struct {
		name     string
		batchQty int
		lineQty  int
		want     bool
	}{
		{name: "available greater than required", batchQty: 20, lineQty: 2, want: true},
		{name: "available smaller than required", batchQty: 2, lineQty: 20, want: false},
		{name: "available equal to required", batchQty: 2, lineQty: 2, want: true},
		{name: "one short", batchQty: 2, lineQty: 3, want: false},
		{name: "empty batch", batchQty: 0, lineQty: 1, want: false},
		{name: "maximum line in maximum batch", batchQty: domain.MaxQty, lineQty: domain.MaxQty, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, line := batchAndLine("ELEGANT-LAMP", tt.batchQty, tt.lineQty)
			assert.Equal(t, tt.want, b.CanAllocate(line), "CanAllocate(qty %d) on a batch of %d", tt.lineQty, tt.batchQty)
		})
	}
}

func TestBatchCannotAllocateIfSKUsDoNotMatch(t *testing.T) {
	for _, qty := range []int{1, 2, 10, 100} {
		b := domain.NewBatch("batch-001", "UNCOMFORTABLE-CHAIR", 100, time.Time{})
		line := domain.OrderLine{OrderID: "order-123", SKU: "EXPENSIVE-TOASTER", Qty: qty}

		assert.False(t, b.CanAllocate(line), "CanAllocate(%+v) on a batch of UNCOMFORTABLE-CHAIR", line)
		b.Allocate(line)
		assert.Equal(t, 100, b.AvailableQuantity(), "Allocate(%+v) must not allocate to another sku", line)
		assert.Equal(t, 0, b.Allocations())
	}
}

func TestBatchAllocationIsASet(t *testing.T) {
	b, line := batchAndLine("ANGULAR-DESK", 20, 2)

	b.Allocate(line)
	b.Allocate(line)

	assert.Equal(t, 18, b.AvailableQuantity(), "allocating the same line twice must count once")
	assert.Equal(t, 1, b.Allocations())
	assert.Equal(t, []domain.OrderLine{line}, b.Lines())
}

func TestBatchAllocateOfHeldOrderWithOtherQtyIsNoOp(t *testing.T) {
	b, line := batchAndLine("ANGULAR-DESK", 20, 2)
	b.Allocate(line)

	other := line
	other.Qty = 3
	b.Allocate(other)

	assert.Equal(t, 18, b.AvailableQuantity())
	assert.Equal(t, 1, b.Allocations())
	held, ok := b.Holds(line.OrderID, line.SKU)
	require.True(t, ok)
	assert.Equal(t, line, held, "the batch must keep the first line of the order")
}

func TestBatchDeallocate(t *testing.T) {
	tests := []struct {
		name          string
		allocate      []domain.OrderLine
		deallocate    domain.OrderLine
		wantAvailable int
		wantLines     []domain.OrderLine
	}{
		{
			name:          "allocated line restores quantity",
			allocate:      []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
			deallocate:    domain.OrderLine{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2},
			wantAvailable: 20,
			wantLines:     []domain.OrderLine{},
		},
		{
			name:          "never allocated line is a no-op on an empty batch",
			deallocate:    domain.OrderLine{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2},
			wantAvailable: 20,
			wantLines:     []domain.OrderLine{},
		},
		{
			name:          "never allocated line is a no-op",
			allocate:      []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
			deallocate:    domain.OrderLine{OrderID: "o2", SKU: "DECORATIVE-TRINKET", Qty: 2},
			wantAvailable: 18,
			wantLines:     []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
		},
		{
			name:          "same order and sku with another qty is a no-op",
			allocate:      []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
			deallocate:    domain.OrderLine{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 3},
			wantAvailable: 18,
			wantLines:     []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
		},
		{
			name:          "same order and qty with another sku is a no-op",
			allocate:      []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
			deallocate:    domain.OrderLine{OrderID: "o1", SKU: "OTHER-TRINKET", Qty: 2},
			wantAvailable: 18,
			wantLines:     []domain.OrderLine{{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 2}},
		},
		{
			name: "one of several lines",
			allocate: []domain.OrderLine{
				{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 1},
				{OrderID: "o2", SKU: "DECORATIVE-TRINKET", Qty: 2},
				{OrderID: "o3", SKU: "DECORATIVE-TRINKET", Qty: 3},
			},
			deallocate:    domain.OrderLine{OrderID: "o2", SKU: "DECORATIVE-TRINKET", Qty: 2},
			wantAvailable: 16,
			wantLines: []domain.OrderLine{
				{OrderID: "o1", SKU: "DECORATIVE-TRINKET", Qty: 1},
				{OrderID: "o3", SKU: "DECORATIVE-TRINKET", Qty: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := domain.NewBatch("batch-001", "DECORATIVE-TRINKET", 20, time.Time{})
			for _, l := range tt.allocate {
				b.Allocate(l)
			}

			b.Deallocate(tt.deallocate)

			assert.Equal(t, tt.wantAvailable, b.AvailableQuantity(), "AvailableQuantity after Deallocate(%+v)", tt.deallocate)
			assert.Equal(t, 20-tt.wantAvailable, b.AllocatedQuantity())
			assert.Equal(t, len(tt.wantLines), b.Allocations())
			assert.Equal(t, tt.wantLines, b.Lines())
			_, held := b.Holds(tt.deallocate.OrderID, tt.deallocate.SKU)
			wasHeld := holdsOrder(tt.wantLines, tt.deallocate)
			assert.Equal(t, wasHeld, held, "Holds(%q, %q) after Deallocate", tt.deallocate.OrderID, tt.deallocate.SKU)
		})
	}
}

// holdsOrder reports whether lines hold a line of l's order (same OrderID and SKU).
func holdsOrder(lines []domain.OrderLine, l domain.OrderLine) bool {
	for _, x := range lines {
		if x.OrderID == l.OrderID && x.SKU == l.SKU {
			return true
		}
	}
	return false
}

func TestBatchDeallocateTwiceRestoresOnce(t *testing.T) {
	b, line := batchAndLine("DECORATIVE-TRINKET", 20, 2)
	b.Allocate(line)

	b.Deallocate(line)
	b.Deallocate(line)

	assert.Equal(t, 20, b.AvailableQuantity())
	assert.Equal(t, 0, b.AllocatedQuantity())
	assert.Equal(t, 0, b.Allocations())
}

func TestBatchReallocateAfterDeallocate(t *testing.T) {
	b, line := batchAndLine("DECORATIVE-TRINKET", 20, 2)
	b.Allocate(line)
	b.Deallocate(line)

	other := line
	other.Qty = 5
	b.Allocate(other)

	assert.Equal(t, 15, b.AvailableQuantity())
	assert.Equal(t, []domain.OrderLine{other}, b.Lines())
}

func TestBatchAllocateThatDoesNotFitIsNoOp(t *testing.T) {
	b, line := batchAndLine("SMALL-TABLE", 10, 11)

	b.Allocate(line)

	assert.Equal(t, 10, b.AvailableQuantity())
	assert.Equal(t, 0, b.AllocatedQuantity())
	assert.Equal(t, 0, b.Allocations())
	_, held := b.Holds(line.OrderID, line.SKU)
	assert.False(t, held)
}

func TestBatchFillsUpExactly(t *testing.T) {
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 10, time.Time{})
	for i, qty := range []int{3, 3, 4} {
		b.Allocate(domain.OrderLine{OrderID: string(rune('a' + i)), SKU: "SMALL-TABLE", Qty: qty})
	}
	require.Equal(t, 0, b.AvailableQuantity())

	last := domain.OrderLine{OrderID: "z", SKU: "SMALL-TABLE", Qty: 1}
	assert.False(t, b.CanAllocate(last))
	b.Allocate(last)
	assert.Equal(t, 0, b.AvailableQuantity())
	assert.Equal(t, 3, b.Allocations())
}

// invalidLines are lines that can never be allocated, whatever the batch holds.
var invalidLines = []struct {
	name string
	line domain.OrderLine
}{
	{name: "zero qty", line: domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: 0}},
	{name: "negative qty", line: domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: -350}},
	{name: "qty -1", line: domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: -1}},
	{name: "qty above MaxQty", line: domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: domain.MaxQty + 1}},
	{name: "empty order id", line: domain.OrderLine{OrderID: "", SKU: "SMALL-TABLE", Qty: 1}},
	{name: "empty sku", line: domain.OrderLine{OrderID: "order-1", SKU: "", Qty: 1}},
}

func TestBatchNeverAllocatesInvalidLines(t *testing.T) {
	for _, tt := range invalidLines {
		t.Run(tt.name, func(t *testing.T) {
			// A batch big enough for any valid line; the empty-sku row gets a batch of the empty sku
			// so that only the line's validity can refuse it.
			b := domain.NewBatch("batch-001", tt.line.SKU, domain.MaxQty, time.Time{})

			assert.False(t, b.CanAllocate(tt.line), "CanAllocate(%+v)", tt.line)
			b.Allocate(tt.line)

			assert.Equal(t, domain.MaxQty, b.AvailableQuantity(), "Allocate(%+v) changed the available quantity", tt.line)
			assert.Equal(t, 0, b.AllocatedQuantity())
			assert.Equal(t, 0, b.Allocations())
			assert.Empty(t, b.Lines())
		})
	}
}

func TestBatchNegativeLineDoesNotRaiseAvailable(t *testing.T) {
	// The book "allocates" a line of -350 and a batch of 10 then has 360 available.
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 10, time.Time{})

	b.Allocate(domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: -350})

	assert.Equal(t, 10, b.AvailableQuantity())
}

func TestOrderLineValidate(t *testing.T) {
	valid := []struct {
		name string
		line domain.OrderLine
	}{
		{name: "qty 1", line: domain.OrderLine{OrderID: "o", SKU: "s", Qty: 1}},
		{name: "qty MaxQty", line: domain.OrderLine{OrderID: "o", SKU: "s", Qty: domain.MaxQty}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, tt.line.Validate())
		})
	}
	for _, tt := range invalidLines {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.line.Validate()
			require.Error(t, err, "Validate(%+v)", tt.line)
			assert.ErrorIs(t, err, domain.ErrInvalidOrderLine)
		})
	}
}

func TestValidateBatch(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		sku     string
		qty     int
		wantErr bool
	}{
		{name: "valid", ref: "b1", sku: "SMALL-TABLE", qty: 20},
		{name: "zero qty", ref: "b1", sku: "SMALL-TABLE", qty: 0},
		{name: "MaxQty", ref: "b1", sku: "SMALL-TABLE", qty: domain.MaxQty},
		{name: "empty reference", ref: "", sku: "SMALL-TABLE", qty: 20, wantErr: true},
		{name: "empty sku", ref: "b1", sku: "", qty: 20, wantErr: true},
		{name: "negative qty", ref: "b1", sku: "SMALL-TABLE", qty: -1, wantErr: true},
		{name: "qty above MaxQty", ref: "b1", sku: "SMALL-TABLE", qty: domain.MaxQty + 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := domain.ValidateBatch(tt.ref, tt.sku, tt.qty)
			if !tt.wantErr {
				assert.NoError(t, err, "ValidateBatch(%q, %q, %d)", tt.ref, tt.sku, tt.qty)
				return
			}
			assert.ErrorIs(t, err, domain.ErrInvalidBatch, "ValidateBatch(%q, %q, %d)", tt.ref, tt.sku, tt.qty)
		})
	}
}

func TestBatchLinesInAllocationOrder(t *testing.T) {
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 1000, time.Time{})
	// Order ids deliberately not in key order, so key order and allocation order differ.
	ids := []string{"m", "c", "x", "a", "q", "b", "z", "k"}
	var want []domain.OrderLine
	for i, id := range ids {
		l := domain.OrderLine{OrderID: id, SKU: "SMALL-TABLE", Qty: i + 1}
		b.Allocate(l)
		want = append(want, l)
	}
	require.Equal(t, want, b.Lines())

	// Deallocate two and allocate one again: it goes to the end.
	b.Deallocate(want[1])
	b.Deallocate(want[5])
	b.Allocate(want[1])
	want = []domain.OrderLine{want[0], want[2], want[3], want[4], want[6], want[7], want[1]}

	assert.Equal(t, want, b.Lines())
}

func TestBatchHolds(t *testing.T) {
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 100, time.Time{})
	held := domain.OrderLine{OrderID: "order-1", SKU: "SMALL-TABLE", Qty: 7}
	b.Allocate(held)
	b.Allocate(domain.OrderLine{OrderID: "order-3", SKU: "SMALL-TABLE", Qty: 1})

	tests := []struct {
		name     string
		orderID  string
		sku      string
		want     domain.OrderLine
		wantHeld bool
	}{
		{name: "held order", orderID: "order-1", sku: "SMALL-TABLE", want: held, wantHeld: true},
		{name: "other order id below", orderID: "order-0", sku: "SMALL-TABLE"},
		{name: "other order id between", orderID: "order-2", sku: "SMALL-TABLE"},
		{name: "other order id above", orderID: "order-4", sku: "SMALL-TABLE"},
		{name: "other sku", orderID: "order-1", sku: "OTHER"},
		{name: "empty key", orderID: "", sku: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := b.Holds(tt.orderID, tt.sku)
			assert.Equal(t, tt.wantHeld, ok, "Holds(%q, %q)", tt.orderID, tt.sku)
			assert.Equal(t, tt.want, got, "Holds(%q, %q)", tt.orderID, tt.sku)
		})
	}
}

func TestBatchCopyIsIndependent(t *testing.T) {
	b := domain.NewBatch("batch-001", "SMALL-TABLE", 20, time.Time{})
	first := domain.OrderLine{OrderID: "o1", SKU: "SMALL-TABLE", Qty: 2}
	b.Allocate(first)

	c := *b // a Batch value shares its allocations and must not see later changes
	second := domain.OrderLine{OrderID: "o2", SKU: "SMALL-TABLE", Qty: 3}
	c.Allocate(second)
	b.Deallocate(first)

	assert.Equal(t, []domain.OrderLine{}, b.Lines())
	assert.Equal(t, 20, b.AvailableQuantity())
	assert.Equal(t, []domain.OrderLine{first, second}, c.Lines())
	assert.Equal(t, 15, c.AvailableQuantity())
}

var errSentinels = []error{
	domain.ErrOutOfStock, domain.ErrInvalidOrderLine, domain.ErrOrderConflict, domain.ErrSKUMismatch,
	domain.ErrDuplicateBatch, domain.ErrUnknownBatch, domain.ErrInvalidBatch,
}

func TestSentinelErrorsAreDistinct(t *testing.T) {
	for i, a := range errSentinels {
		require.Error(t, a)
		for j, b := range errSentinels {
			if i != j {
				assert.False(t, errors.Is(a, b), "errors.Is(%v, %v)", a, b)
			}
		}
	}
}
