package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

func TestChangeBatchQuantity(t *testing.T) {
	// b1 holds o1 of 4, then o2 of 3, then o3 of 1 (8 in all, allocated in that order);
	// b2 holds o4 of 5 and must never be touched.
	tests := []struct {
		name            string
		qty             int
		wantDeallocated []string // orders, in the order their Deallocated events were recorded
		wantHeld        []string // orders b1 still holds, oldest first
	}{
		{"more than allocated", 20, nil, []string{"o1", "o2", "o3"}},
		{"MaxQty, the largest allowed", domain.MaxQty, nil, []string{"o1", "o2", "o3"}},
		{"exactly what is allocated", 8, nil, []string{"o1", "o2", "o3"}},
		{"one unit below: only the most recent line", 7, []string{"o3"}, []string{"o1", "o2"}},
		{"two lines needed", 5, []string{"o3", "o2"}, []string{"o1"}},
		{"one unit below the oldest line alone", 3, []string{"o3", "o2", "o1"}, nil},
		{"zero: everything", 0, []string{"o3", "o2", "o1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("LAMP", []*domain.Batch{
				domain.NewBatch("b1", "LAMP", 8, today), domain.NewBatch("b2", "LAMP", 5, tomorrow),
			})
			for _, l := range []domain.OrderLine{line("o1", "LAMP", 4), line("o2", "LAMP", 3), line("o3", "LAMP", 1), line("o4", "LAMP", 5)} {
				_, err := p.Allocate(l)
				require.NoError(t, err)
			}
			p.Events = nil
			version := p.VersionNumber

			require.NoError(t, p.ChangeBatchQuantity("b1", tt.qty))

			qty := map[string]int{"o1": 4, "o2": 3, "o3": 1}
			var want []domain.Event
			for _, o := range tt.wantDeallocated {
				want = append(want, domain.Deallocated{OrderID: o, SKU: "LAMP", Qty: qty[o]})
			}
			assert.Equal(t, want, p.Events, "one Deallocated per line given up, most recent first")
			b1, _ := p.Batch("b1")
			var held []string
			for _, l := range b1.Lines() {
				held = append(held, l.OrderID)
			}
			assert.Equal(t, tt.wantHeld, held, "lines b1 keeps")
			assert.Equal(t, tt.qty, b1.PurchasedQuantity())
			assert.GreaterOrEqual(t, b1.AvailableQuantity(), 0, "b1 is not over-allocated")
			b2, _ := p.Batch("b2")
			assert.Equal(t, 0, b2.AvailableQuantity(), "b2 untouched")
			assert.Equal(t, version, p.VersionNumber, "a change is not an allocation")
		})
	}
}

func TestChangeBatchQuantityRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		qty  int
		want error
	}{
		{"negative", "b1", -1, domain.ErrInvalidBatch},
		{"above MaxQty", "b1", domain.MaxQty + 1, domain.ErrInvalidBatch},
		{"unknown batch", "nope", 1, domain.ErrUnknownBatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 8, today)})
			_, err := p.Allocate(line("o1", "LAMP", 8))
			require.NoError(t, err)
			p.Events = nil
			assert.ErrorIs(t, p.ChangeBatchQuantity(tt.ref, tt.qty), tt.want)
			assert.Equal(t, 8, p.Batches[0].PurchasedQuantity())
			assert.Equal(t, 1, p.Batches[0].Allocations())
			assert.Empty(t, p.Events)
		})
	}
}
