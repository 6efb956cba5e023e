package service_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// The allocation counts of the hot paths, pinned: testing.AllocsPerRun counts, it does not time,
// so these hold on any machine. Costs that are shared by many calls (the chunks handler contexts
// and IDs are cut from) round down to 0, as they do in the benchmarks' allocs/op.

func TestHandleAllocatesNothing(t *testing.T) {
	skipUnderRace(t)
	tests := []struct {
		name string
		e    domain.Event
	}{
		{"stamped event", domain.OutOfStock{Meta: domain.Meta{ID: "ev-1"}, SKU: "LAMP", Qty: 1}},
		{"event without an ID", domain.OutOfStock{SKU: "LAMP", Qty: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := service.NewBus()
			handled, unstamped := 0, 0
			service.Subscribe(bus, func(_ context.Context, e domain.OutOfStock) error {
				handled++
				if e.ID == "" {
					unstamped++
				}
				return nil
			})
			allocs := testing.AllocsPerRun(1000, func() {
				if err := bus.Handle(ctx, tt.e); err != nil {
					panic(err)
				}
			})
			assert.Zero(t, allocs, "allocations per Handle of one %s to one handler", tt.name)
			assert.Equal(t, 1001, handled)
			assert.Zero(t, unstamped, "events handled without an ID")
		})
	}
}

func TestAChainOfTwoAllocatesNothing(t *testing.T) {
	skipUnderRace(t)
	bus := service.NewBus()
	var oos domain.Message = domain.OutOfStock{SKU: "LAMP", Qty: 1}
	var causes []string
	service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error { return bus.Handle(ctx, oos) })
	service.Subscribe(bus, func(_ context.Context, e domain.OutOfStock) error {
		if len(causes) < 2 {
			causes = append(causes, e.CausationID)
		}
		return nil
	})
	var e domain.Event = domain.Allocated{SKU: "LAMP", OrderID: "o1", Qty: 1, BatchRef: "b1"}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := bus.Handle(ctx, e); err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs, "allocations per chain of two messages without IDs")
	require.Len(t, causes, 2)
	assert.NotEmpty(t, causes[0], "the OutOfStock points at the Allocated that the bus stamped")
	assert.NotEqual(t, causes[0], causes[1], "each call's Allocated has an ID of its own")
}

// TestHandleAllocatesFewBytes pins the bytes a call allocates amortized, which AllocsPerRun
// rounds away: a handler context (one word, cut from chunks) per call and an ID (about 11 bytes,
// cut from an arena) per message the bus stamps. They set how often the collector runs.
func TestHandleAllocatesFewBytes(t *testing.T) {
	skipUnderRace(t)
	bus := service.NewBus()
	var oos domain.Message = domain.OutOfStock{SKU: "LAMP", Qty: 1}
	service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error { return bus.Handle(ctx, oos) })
	service.Subscribe(bus, func(context.Context, domain.OutOfStock) error { return nil })
	tests := []struct {
		name string
		e    domain.Event
		most uint64 // bytes per call
	}{
		{"stamped event", domain.OutOfStock{Meta: domain.Meta{ID: "ev-1"}, SKU: "LAMP", Qty: 1}, 12},
		{"event without an ID", domain.OutOfStock{SKU: "LAMP", Qty: 1}, 24},
		{"chain of two without IDs", domain.Allocated{SKU: "LAMP", OrderID: "o1", Qty: 1, BatchRef: "b1"}, 36},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const calls = 20_000
			for range 1000 { // warm the pooled call state
				require.NoError(t, bus.Handle(ctx, tt.e))
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range calls {
				if err := bus.Handle(ctx, tt.e); err != nil {
					require.NoError(t, err)
				}
			}
			runtime.ReadMemStats(&after)
			perCall := (after.TotalAlloc - before.TotalAlloc) / calls
			assert.LessOrEqual(t, perCall, tt.most, "bytes allocated per Handle of a %s: %d", tt.name, perCall)
		})
	}
}

// TestAllocateAllocatesAtMostTwo pins service.Allocate on the fakes: the transaction with its
// copy of the product, and the Allocated event, boxed once with its Meta (the product stamps it
// on record, so the unit of work copies no event; the fake store keeps a product's state by
// value, so its commit allocates nothing). BenchmarkAllocate reports two more: its order-ID
// string, built from strconv.Itoa's string.
func TestAllocateAllocatesAtMostTwo(t *testing.T) {
	skipUnderRace(t)
	for _, history := range []int{10, 20_000} {
		t.Run("history="+strconv.Itoa(history), func(t *testing.T) {
			store := fakes.NewStore()
			batch := domain.NewBatch("batch", "HOT", domain.MaxQty, time.Time{})
			for i := range history {
				batch.Allocate(domain.OrderLine{OrderID: "old-" + strconv.Itoa(i), SKU: "HOT", Qty: 1})
			}
			tx, err := store.Begin(ctx)
			require.NoError(t, err)
			require.NoError(t, tx.Add(ctx, domain.NewProduct("HOT", []*domain.Batch{batch})))
			require.NoError(t, tx.Commit(ctx))
			uow := service.Bootstrap(store, fakes.NewMailer())
			orders := make([]string, 1001)
			for i := range orders {
				orders[i] = "order-" + strconv.Itoa(i)
			}
			i := 0
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := service.Allocate(ctx, uow, orders[i], "HOT", 1); err != nil {
					panic(err)
				}
				i++
			})
			assert.LessOrEqual(t, allocs, 2.0, "allocations per service.Allocate with %d lines held", history)
			p, _ := store.Product("HOT")
			assert.Equal(t, history+1001, p.Batches[0].Allocations(), "every order was allocated")
		})
	}
}

// deep embeds Meta through another struct: the bus still sets the handler's copy's Meta.
type deep struct {
	inner
	Name string
}

type inner struct{ domain.Meta }

func (d deep) WithIdentity(m domain.Meta) domain.Event { d.Meta = m; return d }

func TestStampingInPlaceReachesEmbeddedMeta(t *testing.T) {
	bus := service.NewBus()
	var got []domain.Meta
	service.Subscribe(bus, func(ctx context.Context, d deep) error {
		got = append(got, d.Identity())
		if d.Name == "a" {
			return bus.Handle(ctx, deep{Name: "b"})
		}
		return nil
	})
	require.NoError(t, bus.Handle(ctx, deep{Name: "a"}))
	require.Len(t, got, 2)
	assert.NotEmpty(t, got[0].ID)
	assert.Equal(t, domain.Meta{ID: got[1].ID, CausationID: got[0].ID}, got[1])
}

func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
}
