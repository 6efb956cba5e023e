package domain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

var (
	tomorrow = today.Add(24 * time.Hour)
	later    = today.Add(10 * 24 * time.Hour)
)

func line(orderID, sku string, qty int) domain.OrderLine {
	return domain.OrderLine{OrderID: orderID, SKU: sku, Qty: qty}
}

// outOfStock is what an OutOfStock event carries at domain level, without its Meta.
type outOfStock struct {
	SKU, OrderID string
	Qty          int
}

// outOfStockEvents returns the product's OutOfStock events as outOfStock values, skipping the
// Allocated events of successful allocations and failing on any other event.
func outOfStockEvents(t *testing.T, p *domain.Product) []outOfStock {
	t.Helper()
	got := []outOfStock{}
	for i, e := range p.Events {
		if _, ok := e.(domain.Allocated); ok {
			continue
		}
		o, ok := e.(domain.OutOfStock)
		require.True(t, ok, "event %d is %T, want domain.OutOfStock", i, e)
		assert.Equal(t, domain.Meta{}, o.Identity(), "event %d: the domain records events with an empty Meta", i)
		got = append(got, outOfStock{SKU: o.SKU, OrderID: o.OrderID, Qty: o.Qty})
	}
	return got
}

// snapshot is the observable state of a product, to check that a call changed nothing.
type snapshot struct {
	Version   int
	Events    int
	Allocated int
	Batches   []batchState
}

type batchState struct {
	Ref       string
	Available int
	Lines     []domain.OrderLine
}

func snap(p *domain.Product) snapshot {
	s := snapshot{Version: p.VersionNumber, Events: len(p.Events), Allocated: p.Allocated()}
	for _, b := range p.Batches {
		s.Batches = append(s.Batches, batchState{Ref: b.Reference, Available: b.AvailableQuantity(), Lines: b.Lines()})
	}
	return s
}

func TestNewProductHasNoEvents(t *testing.T) {
	p := domain.NewProduct("RETRO-CLOCK", []*domain.Batch{domain.NewBatch("b1", "RETRO-CLOCK", 10, time.Time{})})

	assert.Equal(t, "RETRO-CLOCK", p.SKU)
	assert.Len(t, p.Batches, 1)
	assert.Equal(t, 0, p.VersionNumber)
	assert.Empty(t, p.Events)
}

func TestProductPrefersWarehouseStockToShipments(t *testing.T) {
	inStock := domain.NewBatch("in-stock-batch", "RETRO-CLOCK", 100, time.Time{})
	shipment := domain.NewBatch("shipment-batch", "RETRO-CLOCK", 100, tomorrow)
	// Shipment listed first, so that list order alone would pick the wrong one.
	p := domain.NewProduct("RETRO-CLOCK", []*domain.Batch{shipment, inStock})

	ref, err := p.Allocate(line("oref", "RETRO-CLOCK", 10))

	require.NoError(t, err)
	assert.Equal(t, "in-stock-batch", ref)
	assert.Equal(t, 90, inStock.AvailableQuantity())
	assert.Equal(t, 100, shipment.AvailableQuantity())
}

func TestProductPrefersEarlierBatches(t *testing.T) {
	earliest := domain.NewBatch("speedy-batch", "MINIMALIST-SPOON", 100, today)
	medium := domain.NewBatch("normal-batch", "MINIMALIST-SPOON", 100, tomorrow)
	latest := domain.NewBatch("slow-batch", "MINIMALIST-SPOON", 100, later)
	p := domain.NewProduct("MINIMALIST-SPOON", []*domain.Batch{medium, earliest, latest})

	ref, err := p.Allocate(line("order1", "MINIMALIST-SPOON", 10))

	require.NoError(t, err)
	assert.Equal(t, "speedy-batch", ref)
	assert.Equal(t, 90, earliest.AvailableQuantity())
	assert.Equal(t, 100, medium.AvailableQuantity())
	assert.Equal(t, 100, latest.AvailableQuantity())
}

func TestProductPreference(t *testing.T) {
	type b struct {
		ref string
		eta time.Time
	}
	tests := []struct {
		name    string
		batches []b
		want    string
	}{
		{name: "single warehouse", batches: []b{{"w", time.Time{}}}, want: "w"},
		{name: "warehouse after shipment", batches: []b{{"s", today}, {"w", time.Time{}}}, want: "w"},
		{name: "warehouse before shipment", batches: []b{{"w", time.Time{}}, {"s", today}}, want: "w"},
		{name: "two warehouses keep order", batches: []b{{"w1", time.Time{}}, {"w2", time.Time{}}}, want: "w1"},
		{name: "equal ETAs keep order", batches: []b{{"s1", today}, {"s2", today}}, want: "s1"},
		{name: "equal ETAs keep order after a later one", batches: []b{{"late", later}, {"s1", today}, {"s2", today}}, want: "s1"},
		{name: "equal ETA in other time zone keeps order", batches: []b{{"s1", today}, {"s2", today.In(time.FixedZone("X", 3600))}}, want: "s1"},
		{name: "earliest last", batches: []b{{"late", later}, {"mid", tomorrow}, {"early", today}}, want: "early"},
		{name: "earliest first", batches: []b{{"early", today}, {"mid", tomorrow}, {"late", later}}, want: "early"},
		{name: "warehouse last among shipments", batches: []b{{"late", later}, {"early", today}, {"w", time.Time{}}}, want: "w"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var batches []*domain.Batch
			for _, x := range tt.batches {
				batches = append(batches, domain.NewBatch(x.ref, "SPOON", 100, x.eta))
			}
			p := domain.NewProduct("SPOON", batches)

			ref, err := p.Allocate(line("order1", "SPOON", 10))

			require.NoError(t, err)
			assert.Equal(t, tt.want, ref)
			for _, b := range p.Batches {
				want := 100
				if b.Reference == tt.want {
					want = 90
				}
				assert.Equal(t, want, b.AvailableQuantity(), "batch %s", b.Reference)
			}
		})
	}
}

func TestProductFallsThroughToNextBatch(t *testing.T) {
	tests := []struct {
		name      string
		batches   []*domain.Batch
		qty       int
		want      string
		wantAvail map[string]int
	}{
		{
			name: "warehouse too small, shipment takes it",
			batches: []*domain.Batch{
				domain.NewBatch("warehouse", "CLOCK", 5, time.Time{}),
				domain.NewBatch("shipment", "CLOCK", 100, tomorrow),
			},
			qty:       10,
			want:      "shipment",
			wantAvail: map[string]int{"warehouse": 5, "shipment": 90},
		},
		{
			name: "earliest too small, next earliest takes it",
			batches: []*domain.Batch{
				domain.NewBatch("late", "CLOCK", 100, later),
				domain.NewBatch("early", "CLOCK", 9, today),
				domain.NewBatch("mid", "CLOCK", 100, tomorrow),
			},
			qty:       10,
			want:      "mid",
			wantAvail: map[string]int{"late": 100, "early": 9, "mid": 90},
		},
		{
			name: "first of equal ETAs too small",
			batches: []*domain.Batch{
				domain.NewBatch("s1", "CLOCK", 1, today),
				domain.NewBatch("s2", "CLOCK", 100, today),
			},
			qty:       10,
			want:      "s2",
			wantAvail: map[string]int{"s1": 1, "s2": 90},
		},
		{
			name: "only the last fits exactly",
			batches: []*domain.Batch{
				domain.NewBatch("w", "CLOCK", 9, time.Time{}),
				domain.NewBatch("s1", "CLOCK", 9, today),
				domain.NewBatch("s2", "CLOCK", 10, later),
			},
			qty:       10,
			want:      "s2",
			wantAvail: map[string]int{"w": 9, "s1": 9, "s2": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("CLOCK", tt.batches)

			ref, err := p.Allocate(line("order1", "CLOCK", tt.qty))

			require.NoError(t, err)
			assert.Equal(t, tt.want, ref)
			for _, b := range p.Batches {
				assert.Equal(t, tt.wantAvail[b.Reference], b.AvailableQuantity(), "batch %s", b.Reference)
			}
			assert.Equal(t, 1, p.VersionNumber)
			assert.Equal(t, []domain.Event{domain.Allocated{OrderID: "order1", SKU: "CLOCK", Qty: tt.qty, BatchRef: tt.want}}, p.Events)
		})
	}
}

func TestProductAllocateReturnsBatchRefAndBumpsVersion(t *testing.T) {
	inStock := domain.NewBatch("in-stock-batch-ref", "HIGHBROW-POSTER", 100, time.Time{})
	shipment := domain.NewBatch("shipment-batch-ref", "HIGHBROW-POSTER", 100, tomorrow)
	p := domain.NewProduct("HIGHBROW-POSTER", []*domain.Batch{inStock, shipment})
	p.VersionNumber = 7

	ref, err := p.Allocate(line("oref", "HIGHBROW-POSTER", 10))

	require.NoError(t, err)
	assert.Equal(t, inStock.Reference, ref)
	assert.Equal(t, 8, p.VersionNumber, "VersionNumber after one successful Allocate from 7")
	assert.Equal(t, 10, p.Allocated())
	assert.Equal(t, []domain.Event{domain.Allocated{OrderID: "oref", SKU: "HIGHBROW-POSTER", Qty: 10, BatchRef: inStock.Reference}}, p.Events)
}

func TestProductVersionCountsAllocations(t *testing.T) {
	p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 100, time.Time{})})
	for i := range 5 {
		_, err := p.Allocate(line(fmt.Sprintf("o%d", i), "LAMP", 1))
		require.NoError(t, err)
		assert.Equal(t, i+1, p.VersionNumber)
	}
}

func TestProductOutOfStock(t *testing.T) {
	batch := domain.NewBatch("batch1", "SMALL-FORK", 10, time.Time{})
	p := domain.NewProduct("SMALL-FORK", []*domain.Batch{batch})
	ref, err := p.Allocate(line("order1", "SMALL-FORK", 10))
	require.NoError(t, err)
	require.Equal(t, "batch1", ref)
	require.Equal(t, 1, p.VersionNumber)

	ref, err = p.Allocate(line("order2", "SMALL-FORK", 1))

	assert.Empty(t, ref, "Allocate when out of stock must return no batch reference")
	assert.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.Equal(t, []outOfStock{{SKU: "SMALL-FORK", OrderID: "order2", Qty: 1}}, outOfStockEvents(t, p))
	assert.Equal(t, 1, p.VersionNumber, "VersionNumber must not change when out of stock")
	assert.Equal(t, 10, p.Allocated())
	assert.Equal(t, 1, batch.Allocations())
}

func TestProductEachFailedAttemptRecordsAnEvent(t *testing.T) {
	p := domain.NewProduct("SMALL-FORK", []*domain.Batch{domain.NewBatch("batch1", "SMALL-FORK", 10, time.Time{})})
	_, err := p.Allocate(line("order1", "SMALL-FORK", 10))
	require.NoError(t, err)

	_, err1 := p.Allocate(line("order2", "SMALL-FORK", 1))
	_, err2 := p.Allocate(line("order2", "SMALL-FORK", 1))
	_, err3 := p.Allocate(line("order3", "SMALL-FORK", 4))

	assert.ErrorIs(t, err1, domain.ErrOutOfStock)
	assert.ErrorIs(t, err2, domain.ErrOutOfStock)
	assert.ErrorIs(t, err3, domain.ErrOutOfStock)
	assert.Equal(t, []outOfStock{
		{SKU: "SMALL-FORK", OrderID: "order2", Qty: 1},
		{SKU: "SMALL-FORK", OrderID: "order2", Qty: 1},
		{SKU: "SMALL-FORK", OrderID: "order3", Qty: 4},
	}, outOfStockEvents(t, p))
	assert.Equal(t, 1, p.VersionNumber)
}

func TestProductOutOfStockWithoutBatches(t *testing.T) {
	p := domain.NewProduct("SMALL-FORK", nil)

	ref, err := p.Allocate(line("order1", "SMALL-FORK", 1))

	assert.Empty(t, ref)
	assert.ErrorIs(t, err, domain.ErrOutOfStock)
	assert.Equal(t, []outOfStock{{SKU: "SMALL-FORK", OrderID: "order1", Qty: 1}}, outOfStockEvents(t, p))
	assert.Equal(t, 0, p.VersionNumber)
}

func TestProductAllocateRejectsBadLines(t *testing.T) {
	tests := []struct {
		name    string
		line    domain.OrderLine
		wantErr error
	}{
		{name: "zero qty", line: line("order1", "SMALL-FORK", 0), wantErr: domain.ErrInvalidOrderLine},
		{name: "negative qty", line: line("order1", "SMALL-FORK", -350), wantErr: domain.ErrInvalidOrderLine},
		{name: "qty above MaxQty", line: line("order1", "SMALL-FORK", domain.MaxQty+1), wantErr: domain.ErrInvalidOrderLine},
		{name: "empty order id", line: line("", "SMALL-FORK", 1), wantErr: domain.ErrInvalidOrderLine},
		{name: "empty sku", line: line("order1", "", 1), wantErr: domain.ErrInvalidOrderLine},
		{name: "sku mismatch", line: line("order1", "EXPENSIVE-TOASTER", 1), wantErr: domain.ErrSKUMismatch},
		{name: "sku mismatch with a held order id", line: line("held", "EXPENSIVE-TOASTER", 2), wantErr: domain.ErrSKUMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("SMALL-FORK", []*domain.Batch{
				domain.NewBatch("batch1", "SMALL-FORK", 10, time.Time{}),
				// A batch of the line's sku, so that only the product's own check can refuse it.
				domain.NewBatch("batch2", "EXPENSIVE-TOASTER", 10, time.Time{}),
			})
			_, err := p.Allocate(line("held", "SMALL-FORK", 2))
			require.NoError(t, err)
			p.VersionNumber = 7
			before := snap(p)

			ref, err := p.Allocate(tt.line)

			assert.Empty(t, ref)
			assert.ErrorIs(t, err, tt.wantErr, "Allocate(%+v)", tt.line)
			assert.NotErrorIs(t, err, domain.ErrOutOfStock, "Allocate(%+v)", tt.line)
			assert.Equal(t, before, snap(p), "Allocate(%+v) must change nothing", tt.line)
			assert.Len(t, p.Events, 1, "only the set-up allocation recorded an event")
		})
	}
}

func TestProductReallocationIsIdempotent(t *testing.T) {
	warehouse := domain.NewBatch("warehouse", "RETRO-CLOCK", 15, time.Time{})
	shipment := domain.NewBatch("shipment", "RETRO-CLOCK", 100, tomorrow)
	p := domain.NewProduct("RETRO-CLOCK", []*domain.Batch{warehouse, shipment})
	_, err := p.Allocate(line("order0", "RETRO-CLOCK", 5))
	require.NoError(t, err)
	first, err := p.Allocate(line("order1", "RETRO-CLOCK", 10))
	require.NoError(t, err)
	require.Equal(t, "warehouse", first)
	before := snap(p)

	// The warehouse is now full: a second allocation would go to the shipment or run out of stock.
	again, err := p.Allocate(line("order1", "RETRO-CLOCK", 10))

	require.NoError(t, err)
	assert.Equal(t, first, again, "re-allocating the same order must return the batch it is in")
	assert.Equal(t, before, snap(p), "re-allocating the same order must change nothing")
	assert.Len(t, p.Events, 2, "only the two set-up allocations recorded events")
	assert.Equal(t, 15, p.Allocated())
}

func TestProductReallocationFindsLaterBatch(t *testing.T) {
	warehouse := domain.NewBatch("warehouse", "RETRO-CLOCK", 5, time.Time{})
	shipment := domain.NewBatch("shipment", "RETRO-CLOCK", 100, tomorrow)
	p := domain.NewProduct("RETRO-CLOCK", []*domain.Batch{warehouse, shipment})
	first, err := p.Allocate(line("order1", "RETRO-CLOCK", 10))
	require.NoError(t, err)
	require.Equal(t, "shipment", first)
	// Now the preferred warehouse could take the order, but it already holds stock in the shipment.
	require.NoError(t, p.AddBatch(domain.NewBatch("warehouse2", "RETRO-CLOCK", 100, time.Time{})))
	before := snap(p)

	again, err := p.Allocate(line("order1", "RETRO-CLOCK", 10))

	require.NoError(t, err)
	assert.Equal(t, "shipment", again)
	assert.Equal(t, before, snap(p))
}

func TestProductSameOrderOtherQtyConflicts(t *testing.T) {
	for _, qty := range []int{9, 11, 1} {
		t.Run(fmt.Sprintf("qty %d", qty), func(t *testing.T) {
			p := domain.NewProduct("RETRO-CLOCK", []*domain.Batch{
				domain.NewBatch("shipment", "RETRO-CLOCK", 100, tomorrow),
				domain.NewBatch("warehouse", "RETRO-CLOCK", 100, time.Time{}),
			})
			_, err := p.Allocate(line("order1", "RETRO-CLOCK", 10))
			require.NoError(t, err)
			before := snap(p)

			ref, err := p.Allocate(line("order1", "RETRO-CLOCK", qty))

			assert.Empty(t, ref)
			assert.ErrorIs(t, err, domain.ErrOrderConflict)
			assert.NotErrorIs(t, err, domain.ErrOutOfStock)
			assert.Equal(t, before, snap(p))
			assert.Len(t, p.Events, 1, "only the set-up allocation recorded an event")
		})
	}
}

func TestProductOtherOrderSameIDDifferentSKU(t *testing.T) {
	// An order is identified by id and sku: the same id in another product is another order.
	a := domain.NewProduct("A", []*domain.Batch{domain.NewBatch("ba", "A", 10, time.Time{})})
	b := domain.NewProduct("B", []*domain.Batch{domain.NewBatch("bb", "B", 10, time.Time{})})

	refA, errA := a.Allocate(line("order1", "A", 3))
	refB, errB := b.Allocate(line("order1", "B", 4))

	require.NoError(t, errA)
	require.NoError(t, errB)
	assert.Equal(t, "ba", refA)
	assert.Equal(t, "bb", refB)
}

func TestProductClone(t *testing.T) {
	p := domain.NewProduct("LAMP", []*domain.Batch{
		domain.NewBatch("b1", "LAMP", 10, time.Time{}),
		domain.NewBatch("b2", "LAMP", 20, tomorrow),
	})
	_, err := p.Allocate(line("o1", "LAMP", 10))
	require.NoError(t, err)
	_, err = p.Allocate(line("o2", "LAMP", 100))
	require.ErrorIs(t, err, domain.ErrOutOfStock)
	require.Len(t, p.Events, 2) // Allocated, then OutOfStock

	c := p.Clone()

	assert.Empty(t, c.Events, "a Clone starts with no pending events")
	assert.Len(t, p.Events, 2, "Clone must not take the original's events")
	assert.Equal(t, p.SKU, c.SKU)
	assert.Equal(t, p.VersionNumber, c.VersionNumber)
	assert.Equal(t, snap(p).Batches, snap(c).Batches)
	for i := range p.Batches {
		assert.NotSame(t, p.Batches[i], c.Batches[i], "Clone must copy batch %d", i)
		assert.Equal(t, p.Batches[i].Reference, c.Batches[i].Reference)
		assert.Equal(t, p.Batches[i].SKU, c.Batches[i].SKU)
		assert.True(t, p.Batches[i].ETA.Equal(c.Batches[i].ETA))
		assert.Equal(t, p.Batches[i].PurchasedQuantity(), c.Batches[i].PurchasedQuantity())
	}
	assert.True(t, p.SameState(c))
	assert.True(t, c.SameState(p))
}

func TestProductCloneIsIndependent(t *testing.T) {
	newProduct := func(t *testing.T) *domain.Product {
		p := domain.NewProduct("LAMP", []*domain.Batch{
			domain.NewBatch("b1", "LAMP", 10, time.Time{}),
			domain.NewBatch("b2", "LAMP", 20, tomorrow),
		})
		_, err := p.Allocate(line("o1", "LAMP", 4))
		require.NoError(t, err)
		p.Events = nil // published, as a unit of work would have done
		return p
	}
	tests := []struct {
		name   string
		change func(t *testing.T, p *domain.Product)
	}{
		{name: "allocate", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 6))
			require.NoError(t, err)
		}},
		{name: "allocate to second batch", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 15))
			require.NoError(t, err)
		}},
		{name: "out of stock", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 100))
			require.ErrorIs(t, err, domain.ErrOutOfStock)
		}},
		{name: "deallocate through a batch", change: func(t *testing.T, p *domain.Product) {
			p.Batches[0].Deallocate(line("o1", "LAMP", 4))
		}},
		{name: "add batch", change: func(t *testing.T, p *domain.Product) {
			require.NoError(t, p.AddBatch(domain.NewBatch("b3", "LAMP", 5, time.Time{})))
		}},
		{name: "change version", change: func(t *testing.T, p *domain.Product) {
			p.VersionNumber = 42
		}},
	}
	for _, tt := range tests {
		t.Run("change clone/"+tt.name, func(t *testing.T) {
			p := newProduct(t)
			before := snap(p)

			c := p.Clone()
			tt.change(t, c)

			assert.Equal(t, before, snap(p), "changing a Clone must not change the original")
			assert.NotEqual(t, before, snap(c), "the change must be visible on the Clone")
		})
		t.Run("change original/"+tt.name, func(t *testing.T) {
			p := newProduct(t)
			c := p.Clone()
			before := snap(c)

			tt.change(t, p)

			assert.Equal(t, before, snap(c), "changing the original must not change its Clone")
			assert.NotEqual(t, before, snap(p), "the change must be visible on the original")
		})
	}
}

func TestProductSameState(t *testing.T) {
	newProduct := func(t *testing.T) *domain.Product {
		p := domain.NewProduct("LAMP", []*domain.Batch{
			domain.NewBatch("b1", "LAMP", 10, time.Time{}),
			domain.NewBatch("b2", "LAMP", 20, tomorrow),
		})
		_, err := p.Allocate(line("o1", "LAMP", 4))
		require.NoError(t, err)
		return p
	}
	tests := []struct {
		name   string
		change func(t *testing.T, p *domain.Product)
		want   bool
	}{
		{name: "unchanged", change: func(*testing.T, *domain.Product) {}, want: true},
		{name: "out of stock records only an event", want: true, change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 100))
			require.ErrorIs(t, err, domain.ErrOutOfStock)
		}},
		{name: "idempotent re-allocation", want: true, change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o1", "LAMP", 4))
			require.NoError(t, err)
		}},
		{name: "rejected line", want: true, change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 0))
			require.Error(t, err)
		}},
		{name: "allocation", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 1))
			require.NoError(t, err)
		}},
		{name: "allocation to second batch", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 15))
			require.NoError(t, err)
		}},
		{name: "allocation with version reset", change: func(t *testing.T, p *domain.Product) {
			_, err := p.Allocate(line("o2", "LAMP", 1))
			require.NoError(t, err)
			p.VersionNumber--
		}},
		{name: "deallocation with the version unchanged", change: func(t *testing.T, p *domain.Product) {
			p.Batches[0].Deallocate(line("o1", "LAMP", 4))
		}},
		{name: "add batch", change: func(t *testing.T, p *domain.Product) {
			require.NoError(t, p.AddBatch(domain.NewBatch("b3", "LAMP", 5, time.Time{})))
		}},
		{name: "version change", change: func(t *testing.T, p *domain.Product) {
			p.VersionNumber++
		}},
		{name: "sku change", change: func(t *testing.T, p *domain.Product) {
			p.SKU = "OTHER"
		}},
		{name: "batch reference change", change: func(t *testing.T, p *domain.Product) {
			p.Batches[1].Reference = "renamed"
		}},
		{name: "batch sku change", change: func(t *testing.T, p *domain.Product) {
			p.Batches[1].SKU = "OTHER"
		}},
		{name: "batch ETA change", change: func(t *testing.T, p *domain.Product) {
			p.Batches[1].ETA = later
		}},
		{name: "batch replaced by one of another quantity", change: func(t *testing.T, p *domain.Product) {
			old := p.Batches[1]
			p.Batches[1] = domain.NewBatch(old.Reference, old.SKU, 21, old.ETA)
		}},
		{name: "batch order swapped", change: func(t *testing.T, p *domain.Product) {
			p.Batches[0], p.Batches[1] = p.Batches[1], p.Batches[0]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newProduct(t)
			c := p.Clone()

			tt.change(t, c)

			assert.Equal(t, tt.want, p.SameState(c), "p.SameState(clone) after %s", tt.name)
			assert.Equal(t, tt.want, c.SameState(p), "clone.SameState(p) after %s", tt.name)
		})
	}
}

func TestProductSameStateOfSeparateEmptyProducts(t *testing.T) {
	p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 10, today)})
	o := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 10, today.In(time.FixedZone("X", 7200)))})

	assert.True(t, p.SameState(o), "two products built alike with no allocations hold the same state")
}

func TestProductAddBatch(t *testing.T) {
	tests := []struct {
		name    string
		batch   *domain.Batch
		wantErr error
	}{
		{name: "valid", batch: domain.NewBatch("b2", "LAMP", 5, tomorrow)},
		{name: "zero qty", batch: domain.NewBatch("b2", "LAMP", 0, time.Time{})},
		{name: "MaxQty", batch: domain.NewBatch("b2", "LAMP", domain.MaxQty, time.Time{})},
		{name: "empty reference", batch: domain.NewBatch("", "LAMP", 5, time.Time{}), wantErr: domain.ErrInvalidBatch},
		{name: "empty sku", batch: domain.NewBatch("b2", "", 5, time.Time{}), wantErr: domain.ErrInvalidBatch},
		{name: "negative qty", batch: domain.NewBatch("b2", "LAMP", -1, time.Time{}), wantErr: domain.ErrInvalidBatch},
		{name: "qty above MaxQty", batch: domain.NewBatch("b2", "LAMP", domain.MaxQty+1, time.Time{}), wantErr: domain.ErrInvalidBatch},
		{name: "sku mismatch", batch: domain.NewBatch("b2", "TABLE", 5, time.Time{}), wantErr: domain.ErrSKUMismatch},
		{name: "duplicate reference", batch: domain.NewBatch("b1", "LAMP", 5, time.Time{}), wantErr: domain.ErrDuplicateBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := domain.NewBatch("b1", "LAMP", 10, time.Time{})
			p := domain.NewProduct("LAMP", []*domain.Batch{first})

			err := p.AddBatch(tt.batch)

			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr, "AddBatch(%q, %q, %d)", tt.batch.Reference, tt.batch.SKU, tt.batch.PurchasedQuantity())
				assert.Equal(t, []*domain.Batch{first}, p.Batches, "a rejected batch must not be appended")
				return
			}
			require.NoError(t, err)
			require.Len(t, p.Batches, 2)
			assert.Same(t, first, p.Batches[0])
			assert.Same(t, tt.batch, p.Batches[1])
			assert.Equal(t, 0, p.VersionNumber)
			assert.Empty(t, p.Events)
			got, ok := p.Batch(tt.batch.Reference)
			require.True(t, ok)
			assert.Same(t, tt.batch, got)
		})
	}
}

func TestProductAddBatchThenAllocate(t *testing.T) {
	p := domain.NewProduct("LAMP", nil)
	_, err := p.Allocate(line("o1", "LAMP", 3))
	require.ErrorIs(t, err, domain.ErrOutOfStock)

	require.NoError(t, p.AddBatch(domain.NewBatch("b1", "LAMP", 3, tomorrow)))
	ref, err := p.Allocate(line("o1", "LAMP", 3))

	require.NoError(t, err)
	assert.Equal(t, "b1", ref)
}

func TestProductBatch(t *testing.T) {
	b1 := domain.NewBatch("b1", "LAMP", 10, time.Time{})
	b2 := domain.NewBatch("b2", "LAMP", 10, time.Time{})
	p := domain.NewProduct("LAMP", []*domain.Batch{b1, b2})

	tests := []struct {
		name   string
		ref    string
		want   *domain.Batch
		wantOK bool
	}{
		{name: "first", ref: "b1", want: b1, wantOK: true},
		{name: "second", ref: "b2", want: b2, wantOK: true},
		{name: "unknown", ref: "b3"},
		{name: "empty", ref: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := p.Batch(tt.ref)
			assert.Equal(t, tt.wantOK, ok, "Batch(%q)", tt.ref)
			assert.Same(t, tt.want, got, "Batch(%q)", tt.ref)
		})
	}
}

func TestProductAllocated(t *testing.T) {
	p := domain.NewProduct("LAMP", []*domain.Batch{
		domain.NewBatch("b1", "LAMP", 10, time.Time{}),
		domain.NewBatch("b2", "LAMP", 10, tomorrow),
		domain.NewBatch("b3", "LAMP", 10, later),
	})
	require.Equal(t, 0, p.Allocated())

	for i, qty := range []int{7, 2, 9, 9} {
		_, err := p.Allocate(line(fmt.Sprintf("o%d", i), "LAMP", qty))
		require.NoError(t, err)
	}

	assert.Equal(t, 27, p.Allocated())
	assert.Equal(t, []int{1, 1, 1}, []int{
		p.Batches[0].AvailableQuantity(), p.Batches[1].AvailableQuantity(), p.Batches[2].AvailableQuantity(),
	})
	assert.Equal(t, 4, p.VersionNumber)
}

func TestOutOfStockIdentity(t *testing.T) {
	e := domain.OutOfStock{SKU: "SMALL-FORK", OrderID: "order2", Qty: 1}
	m := domain.Meta{ID: "evt-1", CausationID: "cmd-1"}

	stamped := e.WithIdentity(m)

	assert.Equal(t, domain.Meta{}, e.Identity(), "WithIdentity must not change the receiver")
	assert.Equal(t, m, stamped.Identity())
	got, ok := stamped.(domain.OutOfStock)
	require.True(t, ok, "WithIdentity returned %T, want domain.OutOfStock", stamped)
	assert.Equal(t, domain.OutOfStock{Meta: m, SKU: "SMALL-FORK", OrderID: "order2", Qty: 1}, got)
}
