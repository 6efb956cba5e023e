package domain_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// The allocation counts of the domain's hot paths, pinned: testing.AllocsPerRun counts, it does
// not time, so these hold on any machine. Growing a batch's chunks and index is shared by many
// calls and rounds down to 0, as it does in the benchmarks' allocs/op.

// allocsProduct returns a product of one warehouse batch that holds history lines, and order
// ids for runs+1 new lines, made up front so that formatting them is not counted.
func allocsProduct(t *testing.T, history, runs int) (*domain.Product, []domain.OrderLine) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	p := domain.NewProduct("HOT", []*domain.Batch{domain.NewBatch("batch", "HOT", domain.MaxQty, time.Time{})})
	for i := range history {
		_, err := p.Allocate(domain.OrderLine{OrderID: "old-" + strconv.Itoa(i), SKU: "HOT", Qty: 1})
		require.NoError(t, err)
	}
	p.Events = nil
	lines := make([]domain.OrderLine, runs+1)
	for i := range lines {
		lines[i] = domain.OrderLine{OrderID: "order-" + strconv.Itoa(i), SKU: "HOT", Qty: 1}
	}
	return p, lines
}

func TestAllocationCounts(t *testing.T) {
	const runs = 1000
	tests := []struct {
		name string
		max  float64
		// run does one operation to p with lines[i] and returns the product to go on with.
		run func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product
	}{
		{
			// What a unit of work does to the product it loaded from a store: its copy's view ends
			// where the log ends, so the line is appended in place. The Allocated event is boxed.
			name: "Product.Allocate of a new line", max: 1,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				mustAllocate(t, p, line)
				p.Events = p.Events[:0]
				return p
			},
		},
		{
			name: "Clone and Allocate, each clone of the last", max: 2,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				c := p.Clone()
				mustAllocate(t, c, line)
				return c
			},
		},
		{
			// A transaction that loaded the product before another one committed: its view forks.
			name: "Clone and Allocate, each clone of the same product", max: 3,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				mustAllocate(t, p.Clone(), line)
				return p
			},
		},
		{
			name: "Product.Allocate of a line already held", max: 0,
			run: func(t *testing.T, p *domain.Product, _ domain.OrderLine) *domain.Product {
				mustAllocate(t, p, domain.OrderLine{OrderID: "old-3", SKU: "HOT", Qty: 1})
				return p
			},
		},
		{
			name: "Batch.Allocate of a new line", max: 0,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				p.Batches[0].Allocate(line)
				return p
			},
		},
		{
			name: "Batch.Holds", max: 0,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				if _, ok := p.Batches[0].Holds("old-5", "HOT"); !ok {
					t.Fatal("Holds(old-5) = false, want true")
				}
				return p
			},
		},
		{
			name: "Clone", max: 1,
			run: func(t *testing.T, p *domain.Product, line domain.OrderLine) *domain.Product {
				if c := p.Clone(); !c.SameState(p) {
					t.Fatal("a clone does not have its product's state")
				}
				return p
			},
		},
	}
	for _, history := range []int{10, 20_000} {
		for _, tt := range tests {
			t.Run(tt.name+"/history="+strconv.Itoa(history), func(t *testing.T) {
				p, lines := allocsProduct(t, history, runs)
				i := 0
				allocs := testing.AllocsPerRun(runs, func() {
					p = tt.run(t, p, lines[i])
					i++
				})
				assert.LessOrEqual(t, allocs, tt.max, "allocations per %s with %d lines held", tt.name, history)
				assert.Equal(t, runs+1, i, "runs")
			})
		}
	}
}

func mustAllocate(t *testing.T, p *domain.Product, line domain.OrderLine) {
	if _, err := p.Allocate(line); err != nil {
		t.Fatalf("Allocate(%v): %v", line, err)
	}
}

// TestLinesAllocatesThreeTimes pins the cost of listing a batch that has seen no deallocation,
// also past a gap (another copy's line, appended in between): the lines, one string for their
// keys and the builder's growth to it, however many lines there are.
func TestLinesAllocatesThreeTimes(t *testing.T) {
	p, lines := allocsProduct(t, 1000, 1)
	rival := p.Clone()
	mustAllocate(t, rival, domain.OrderLine{OrderID: "rival", SKU: "HOT", Qty: 1}) // owns the log's end
	mustAllocate(t, p, lines[0])                                                   // past rival's line
	b := p.Batches[0]
	require.Len(t, b.Lines(), 1001, "lines of the batch")
	assert.Equal(t, lines[0], b.Lines()[1000], "the last line")
	assert.NotContains(t, b.Lines(), domain.OrderLine{OrderID: "rival", SKU: "HOT", Qty: 1}, "the rival's line")
	allocs := testing.AllocsPerRun(10, func() { _ = b.Lines() })
	assert.LessOrEqual(t, allocs, 3.0, "allocations per Lines of %d lines", b.Allocations())
}
