// Package history is what a simulator run observed from outside the code under test (the
// History: orders, events, sends, mails, publications, crashes, the store at the end) and what
// is judged from it alone: Account counts what became of every event, Check holds the history to
// the invariants under the run's promise. Nothing here sees the live run: the simulator's
// recorders assemble a History, and everything in this package reads only that.
package history

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/dispatch"
)

// BatchState is a batch as the store holds it at the end of a run.
type BatchState struct {
	Ref       string
	SKU       string
	Purchased int
	Lines     []domain.OrderLine
}

// Totals is what the clients saw allocated, counted as they went.
type Totals struct {
	Orders        int64 // orders that came back allocated
	Qty           int64 // their quantities summed
	UnknownOrders int64 // orders whose client crashed before it learned the outcome
	UnknownQty    int64
	Failed        int64 // orders that came back failed: retries exhausted, or another error
}

// History is what a run observed from outside the code under test: every order (when recorded),
// every event raised, every send, every mail and publication accepted, every crash, and the store
// at the end. Check judges it and Account counts it.
type History struct {
	Orders []OrderOp // nil unless sim.Config.Record
	Bad    []OrderOp // the invalid orders sent (sim.Config.BadInput), always recorded
	// Reallocations are the Allocate commands Deallocated events sent, with their outcomes
	// (sim.Config.QuantityChanges): a deallocated order's last word is its reallocation, not its client's.
	Reallocations []Reallocation
	Events        []EventOp
	Sends         []SendOp
	Mails         []Mail
	Published     []Publication
	DedupHits     []string // the event IDs of the repeats the mailer recognised, in order
	Crashes       []CrashOp
	Batches       []BatchState
	Products      []ProductState
	// BadBatches are the invalid batches the run tried to add before the first order.
	BadBatches []BadBatch
	Clients    Totals
	// Promise is what the run is held to: the strategy's promise and any the user required.
	Promise dispatch.Promise
	// Drained is false when the run stopped before every committed event had its chance to be
	// delivered (interrupted); undelivered events then count as pending, not lost.
	Drained bool
	// FaultsEnd is when the fault phase ended and the liveness phase (no faults, drain) began.
	FaultsEnd time.Duration
	// StillHeld is how many events the process still held when the run ended (outbox rows not
	// marked done, events in the async queue): none once a run drained.
	StillHeld int
}

// Digest hashes the history's outcomes (not its timings) in a canonical order, so two runs that
// did the same thing have the same digest whatever the interleaving of their goroutines.
func (h *History) Digest() string {
	d := sha256.New()
	var n [8]byte
	put := func(fields ...string) {
		for _, f := range fields {
			binary.LittleEndian.PutUint64(n[:], uint64(len(f)))
			d.Write(n[:])
			d.Write([]byte(f))
		}
	}
	orders := slices.Clone(h.Orders)
	slices.SortFunc(orders, func(a, b OrderOp) int { return CompareIDs(a.ID, b.ID) })
	for _, o := range orders {
		put("order", o.ID, o.SKU, strconv.Itoa(o.Qty), o.Outcome.String(), o.Batch, strconv.FormatBool(o.PublishErr),
			strconv.Itoa(o.Resent), o.Bad.String())
	}
	events := slices.Clone(h.Events)
	slices.SortFunc(events, func(a, b EventOp) int { return CompareIDs(a.ID, b.ID) })
	for _, e := range events {
		put("event", e.ID, e.Order, e.State.String(), e.Kind.String(), strconv.FormatBool(e.Unknown))
	}
	for _, c := range h.Crashes {
		put("crash", c.Point.String(), c.Actor, strings.Join(c.Carried, " "), strings.Join(c.InFlight, " "))
	}
	mails := slices.Clone(h.Mails)
	slices.SortStableFunc(mails, func(a, b Mail) int { return CompareIDs(a.Event, b.Event) })
	for _, m := range mails {
		put("mail", m.Event, m.To, m.Body)
	}
	// Publications as a set: the broker does not de-duplicate, and how often a relay that
	// restarts beside the worker publishes an event again is the scheduler's doing (the
	// accounting counts it).
	published := slices.Clone(h.Published)
	slices.SortStableFunc(published, func(a, b Publication) int { return CompareIDs(a.Event, b.Event) })
	for i, p := range published {
		if i == 0 || p != published[i-1] {
			put("published", p.Event, p.Channel)
		}
	}
	for _, p := range h.Products {
		put("product", p.SKU, strconv.Itoa(p.Version))
	}
	for _, b := range h.Batches {
		put("batch", b.Ref, b.SKU, strconv.Itoa(b.Purchased))
		for _, l := range b.Lines {
			put(l.OrderID, l.SKU, strconv.Itoa(l.Qty))
		}
	}
	return hex.EncodeToString(d.Sum(nil)[:12])
}
