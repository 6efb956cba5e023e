package sim

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// stepRun builds the outbox stack of a run with chains, one worker and no relay left running
// (their life's context is over before they start), so that a test takes the steps of the
// worker and of a relay by hand, in the order it chooses.
func stepRun(t *testing.T) *run {
	t.Helper()
	cfg := Default()
	cfg.Strategy, cfg.QuantityChanges, cfg.Workers, cfg.Relays = Outbox, 0.02, 1, 1
	cfg.Mailer, cfg.Record = FixedLatency(0), true
	require.NoError(t, cfg.Validate())
	r, err := newRun(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, r.setup(context.Background()))
	t.Cleanup(func() {
		for _, closer := range []func() error{r.closeStore, r.closeMailer, r.broker.close} {
			if closer != nil {
				assert.NoError(t, closer())
			}
		}
	})
	over, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, r.startProcess(over))
	r.strategy.Stop() // the relays saw their context over: none claims anything
	return r
}

// pendingDeallocated claims the outbox's pending rows and returns the Deallocated of order.
func pendingDeallocated(t *testing.T, r *run, order string) domain.Deallocated {
	t.Helper()
	now := time.Now().Add(time.Duration(len(r.life.crashes)+100) * time.Hour)
	rows, err := r.store.Claim(context.Background(), "test", now, now.Add(time.Minute), 1000)
	require.NoError(t, err)
	var found []domain.Deallocated
	for _, row := range rows {
		if d, ok := row.Event.(domain.Deallocated); ok && d.OrderID == order {
			found = append(found, d)
		}
	}
	require.Len(t, found, 1, "pending Deallocated of order %s among %d rows", order, len(rows))
	return found[0]
}

// deliverTheRest sends the outbox rows no step sent, but the Deallocated ones (the steps send
// those), and marks every row done.
func deliverTheRest(t *testing.T, r *run, relay context.Context) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Add(1000 * time.Hour)
	rows, err := r.store.Claim(ctx, "rest", now, now.Add(time.Minute), 1000)
	require.NoError(t, err)
	var ids []string
	for _, row := range rows {
		if _, ok := row.Event.(domain.Deallocated); !ok {
			require.NoError(t, r.Deliver(relay, row.Event), "send %s", row.ID())
		}
		ids = append(ids, row.ID())
	}
	require.NoError(t, r.store.Done(ctx, ids...))
}

// heldIn returns the batch of sku that holds order, or "".
func heldIn(t *testing.T, r *run, sku, order string) string {
	t.Helper()
	p, ok := r.store.Product(sku)
	require.True(t, ok, "product %s", sku)
	for _, b := range p.Batches {
		if _, held := b.Holds(order, sku); held {
			return b.Reference
		}
	}
	return ""
}

// TestAStaleDeallocatedSentAgainLeavesTheNextOneDelivered is the interleaving that a relay's
// whole claim between a send and its mark opens (outbox relaybatch), taken step by step:
//
//  1. a quantity change deallocates order O from batch A (Deallocated D1);
//  2. a relay sends D1: its reallocation puts O in batch B;
//  3. before the relay marks its claim, another change deallocates O from B (D2), and the
//     process crashes: D1 is unmarked;
//  4. the next life's relay sends D1 again (at least once): its reallocation puts O back in A;
//  5. D2 is sent: its Allocate finds O held already and commits nothing.
//
// D2 reached its handler, and its handler did all there was to do. The run must count it
// delivered, and where its reallocation left the line, rather than report it lost.
func TestAStaleDeallocatedSentAgainLeavesTheNextOneDelivered(t *testing.T) {
	r := stepRun(t)
	w := r.workers[0]
	var sku string
	var refs []string
	for _, s := range r.plan.SKUs {
		if len(r.batchRefs[s]) >= 2 {
			sku, refs = s, r.batchRefs[s]
			break
		}
	}
	require.NotEmpty(t, sku, "a sku with two batches in the plan")
	o := Order{ID: "o0-1", SKU: sku, Qty: 1, Stream: 0, Seq: 1}
	w.serve(o, 0, 0, 0, false)
	first := heldIn(t, r, sku, o.ID)
	require.NotEmpty(t, first, "the order's allocation")
	p, ok := r.store.Product(sku)
	require.True(t, ok)
	b, ok := p.Batch(first)
	require.True(t, ok)
	purchased := b.PurchasedQuantity()
	other := refs[0]
	if other == first {
		other = refs[1]
	}

	require.NoError(t, w.changeBatch(first, 0), "step 1: empty batch %s", first)
	d1 := pendingDeallocated(t, r, o.ID)
	relay := r.Actor(context.Background(), "r0")
	require.NoError(t, r.Deliver(relay, d1), "step 2: send D1")
	require.Equal(t, other, heldIn(t, r, sku, o.ID), "D1's reallocation")

	require.NoError(t, w.changeBatch(other, 0), "step 3: empty batch %s", other)
	d2 := pendingDeallocated(t, r, o.ID)
	require.NoError(t, w.changeBatch(first, purchased), "batch %s back to %d", first, purchased)

	require.NoError(t, r.Deliver(relay, d1), "step 4: send D1 again")
	require.Equal(t, first, heldIn(t, r, sku, o.ID), "D1's second reallocation")
	require.NoError(t, r.Deliver(relay, d2), "step 5: send D2")
	require.Equal(t, first, heldIn(t, r, sku, o.ID), "D2's reallocation leaves the line")

	deliverTheRest(t, r, relay)

	require.NoError(t, r.readBroker(context.Background()))
	h := r.history(true)
	var mine []Reallocation
	for _, re := range h.Reallocations {
		if re.Order == o.ID {
			mine = append(mine, re)
		}
	}
	assert.Equal(t, []Reallocation{
		{Cause: d1.ID, Order: o.ID, Qty: 1, Batch: other, Outcome: Allocated},
		{Cause: d1.ID, Order: o.ID, Qty: 1, Batch: first, Outcome: Allocated},
		{Cause: d2.ID, Order: o.ID, Qty: 1, Batch: first, Outcome: Allocated},
	}, mine, "the reallocations of order %s", o.ID)
	acc := Account(h)
	dealloc := acc.Kind(KindDeallocated)
	assert.Equal(t, 2, dealloc.Committed, "Deallocated committed")
	assert.Equal(t, 2, dealloc.Delivered, "Deallocated that reached their handler")
	assert.Zero(t, acc.Lost, "events lost")
	for _, inv := range Check(h) {
		assert.True(t, inv.OK, "%s: %v", inv.Name, inv.Examples)
	}
}

// heldSends is a crash plan that, while hold is set, stops every relay right after each send
// that succeeded (RelaySent, before the claim's mark), tells the test which relay stands there,
// and crashes the process there or not as the test answers.
type heldSends struct {
	hold    atomic.Bool
	sent    chan string
	release chan bool
}

func (p *heldSends) Crash(at Point, actor string) bool {
	if at != RelaySent || !p.hold.Load() {
		return false
	}
	p.sent <- actor
	return <-p.release
}

// TestARelayCrashBetweenSendAndMarkLosesNoDeallocated takes the same interleaving through the
// run's own relays and a crash: one worker, one relay, a plan that holds the relay between a
// send and its claim's mark. The relay sends D1 (its reallocation moves the line to batch B);
// while it waits to mark, the worker deallocates the line from B (D2) and gives batch A its
// room back; the process crashes there. The next life's relay sends D1 again, then D2, whose
// Allocate finds the line held: every Deallocated reached its handler.
func TestARelayCrashBetweenSendAndMarkLosesNoDeallocated(t *testing.T) {
	plan := &heldSends{sent: make(chan string), release: make(chan bool)}
	plan.hold.Store(true)
	cfg := Default()
	cfg.Strategy, cfg.QuantityChanges, cfg.Workers, cfg.Relays = Outbox, 0.02, 1, 1
	cfg.Mailer, cfg.Record, cfg.Faults = FixedLatency(0), true, plan
	require.NoError(t, cfg.Validate())
	r, err := newRun(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, r.setup(context.Background()))
	defer func() {
		for _, closer := range []func() error{r.closeStore, r.closeMailer, r.broker.close} {
			if closer != nil {
				assert.NoError(t, closer())
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, r.startProcess(ctx))
	stopped := false
	defer func() {
		if !stopped { // a failed require: let the relays go, and wait for them
			plan.hold.Store(false)
			cancel()
			select {
			case <-plan.sent:
				plan.release <- false
			default:
			}
			r.strategy.Stop()
		}
	}()

	w := r.workers[0]
	var sku string
	var refs []string
	for _, s := range r.plan.SKUs {
		if len(r.batchRefs[s]) >= 2 {
			sku, refs = s, r.batchRefs[s]
			break
		}
	}
	require.NotEmpty(t, sku, "a sku with two batches in the plan")
	o := Order{ID: "o0-1", SKU: sku, Qty: 1, Stream: 0, Seq: 1}
	w.serve(o, 0, 0, 0, false)
	assert.Equal(t, "r0", <-plan.sent, "the relay sent the order's Allocated")
	plan.release <- false
	first := heldIn(t, r, sku, o.ID)
	require.NotEmpty(t, first, "the order's allocation")
	p, ok := r.store.Product(sku)
	require.True(t, ok)
	b, ok := p.Batch(first)
	require.True(t, ok)
	purchased := b.PurchasedQuantity()
	other := refs[0]
	if other == first {
		other = refs[1]
	}

	require.NoError(t, w.changeBatch(first, 0), "empty batch %s: D1", first)
	assert.Equal(t, "r0", <-plan.sent, "the relay sent D1")
	require.Equal(t, other, heldIn(t, r, sku, o.ID), "D1's reallocation")
	require.NoError(t, w.changeBatch(other, 0), "empty batch %s: D2", other)
	require.NoError(t, w.changeBatch(first, purchased), "batch %s back to %d", first, purchased)
	plan.release <- true // the crash, before the relay marks D1
	assert.Equal(t, "r0@1", <-plan.sent, "the next life's relay sent D1 again")
	plan.hold.Store(false)
	plan.release <- false
	r.endFaults()
	r.strategy.Stop()
	stopped = true

	require.NoError(t, r.readBroker(context.Background()))
	h := r.history(true)
	require.Len(t, h.Crashes, 1)
	var deallocs []string
	for _, e := range h.Events {
		if e.Kind == KindDeallocated {
			deallocs = append(deallocs, e.ID)
		}
	}
	require.Len(t, deallocs, 2, "D1 and D2")
	assert.Equal(t, RelaySent, h.Crashes[0].Point)
	assert.Equal(t, "r0", h.Crashes[0].Actor)
	assert.Equal(t, first, heldIn(t, r, sku, o.ID), "D1 sent again took the line back to %s", first)
	var causes []string
	for _, re := range h.Reallocations {
		if re.Order == o.ID {
			causes = append(causes, re.Cause)
		}
	}
	assert.Equal(t, []string{deallocs[0], deallocs[0], deallocs[1]}, causes, "the reallocations' causes")
	acc := Account(h)
	dealloc := acc.Kind(KindDeallocated)
	assert.Equal(t, 2, dealloc.Delivered, "Deallocated that reached their handler, of %d", dealloc.Committed)
	assert.Zero(t, acc.Lost, "events lost")
	for _, inv := range Check(h) {
		assert.True(t, inv.OK, "%s: %v", inv.Name, inv.Examples)
	}
}
