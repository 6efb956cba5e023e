package sim

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// idText hands out IDs that read as eventID and orderID spell them, and each stays intact as
// later IDs fill its block and the next ones.
func TestIDTextSpellsIDsThatStay(t *testing.T) {
	var text idText
	var got, want []string
	for i := range 3 * idBlock / 8 { // several blocks
		stream, seq := i%7, i+1
		got = append(got, text.id('e', stream, seq), text.id('o', stream, seq))
		want = append(want, eventID(stream, seq), fmt.Sprintf("o%d-%d", stream, seq))
	}
	got = append(got, text.id('e', 1<<31-1, 1<<31-1))
	want = append(want, eventID(1<<31-1, 1<<31-1))
	assert.Equal(t, want, got)
}

// eventID spells an event ID as the simulator mints them, independently of idText.
func eventID(stream, seq int) string { return fmt.Sprintf("e%d-%d", stream, seq) }

// recordRun is a run set up as Run sets it up, with its first worker, and closed at the test's end.
func recordRun(t *testing.T) (*run, *worker) {
	t.Helper()
	cfg := Default()
	cfg.Workers, cfg.Orders, cfg.Mailer = 1, 10_000, FixedLatency(0)
	r, err := newRun(cfg, nil)
	require.NoError(t, err)
	require.NoError(t, r.setup(context.Background()))
	t.Cleanup(func() { require.NoError(t, r.close(nil)) })
	r.start = time.Now()
	return r, r.workers[0]
}

// The hot paths of the simulator's records allocate nothing per order: a worker's logs start
// with room for its share (worker.share), the event IDs it hands the domain are spelled into
// blocks of text (idText), and the fake broker and mailer log in chunks.
func TestRecordingAllocatesNothingPerOrder(t *testing.T) {
	rows := []struct {
		name string
		max  float64
		run  func(r *run, w *worker) func()
	}{
		{"an event ID, spelled into the actor's blocks", 0, func(_ *run, w *worker) func() {
			return func() { _ = w.nextEventID() }
		}},
		{"a send's record", 0, func(r *run, w *worker) func() {
			var e domain.Event = domain.OutOfStock{Meta: domain.Meta{ID: "e0-1"}, SKU: "S"}
			return func() { recorder{r}.end(&w.actor, 0, e, false, nil) }
		}},
		{"a mail through the recorder", 0, func(r *run, w *worker) func() {
			mail := service.Mail{To: "stock@made.com", Body: "b", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e0-1"}, SKU: "S"}}
			return func() { _ = recorder{r}.Send(w.ctx, mail) }
		}},
		{"a publication through the recorder", 0, func(r *run, w *worker) func() {
			var e domain.Event = domain.Allocated{Meta: domain.Meta{ID: "e0-1"}, SKU: "S"}
			return func() { _ = recorder{r}.Publish(w.ctx, service.AllocatedChannel, e) }
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r, w := recordRun(t)
			f := row.run(r, w)
			assert.LessOrEqual(t, testing.AllocsPerRun(1000, f), row.max, "allocations per call")
		})
	}
}

// A worker's logs start with room for its share of the plan and a margin, and no more: none
// for a run that goes by time.
func TestAWorkersLogsStartWithItsShare(t *testing.T) {
	rows := []struct {
		name            string
		orders, workers int
		duration        time.Duration
		share           int
	}{
		{"one worker", 10_000, 1, 0, 10_000 + 1_250 + 64},
		{"two workers", 1_000_000, 2, 0, 500_000 + 62_500 + 64},
		{"by time", 1_000_000, 2, time.Second, 0},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			cfg := Default()
			cfg.Orders, cfg.Workers, cfg.Duration = row.orders, row.workers, row.duration
			w := &worker{run: &run{cfg: cfg}}
			assert.Equal(t, row.share, w.share(), "share of %d orders, %d workers", row.orders, row.workers)
		})
	}
}

// The history's IDs are what the logs' numbers spell, a send's cause is its event's own ID, and
// an order's events share its ID.
func TestHistorySpellsTheLogsIDs(t *testing.T) {
	r, w := recordRun(t)
	w.current = Order{ID: "o0-7", Stream: 0, Seq: 7}
	first, second := w.nextEventID(), w.nextEventID()
	w.current = Order{ID: "o0-8", Stream: 0, Seq: 8}
	third := w.nextEventID()
	for _, id := range []string{second, third, "foreign-1"} {
		recorder{r}.end(&w.actor, 0, domain.OutOfStock{Meta: domain.Meta{ID: id}}, false, nil)
	}
	assert.Equal(t, w.share(), cap(w.events), "room in the worker's event log")
	assert.Equal(t, w.share(), cap(w.sends), "room in the worker's send log")
	h := r.history(true)
	require.Len(t, h.Events, 3)
	for i, want := range []struct{ id, order string }{{first, "o0-7"}, {second, "o0-7"}, {third, "o0-8"}} {
		assert.Equal(t, want.id, h.Events[i].ID, "event %d", i)
		assert.Equal(t, want.order, h.Events[i].Order, "event %d's order", i)
	}
	var causes []string
	for _, s := range h.Sends {
		causes = append(causes, s.Event)
	}
	assert.Equal(t, []string{second, third, "foreign-1"}, causes)
	assert.Equal(t, "e0-"+strconv.Itoa(2), second)
	assert.Same(t, unsafe.StringData(h.Events[1].ID), unsafe.StringData(h.Sends[0].Event), "a send's cause shares its event's ID")
	assert.Same(t, unsafe.StringData(h.Events[0].Order), unsafe.StringData(h.Events[1].Order), "an order's events share its ID")
}

// Assembling the history allocates per block of IDs and per slice, not per event or send: a
// thousand orders' records cost what a handful do, give or take a block.
func TestHistoryAllocatesPerBlockNotPerEvent(t *testing.T) {
	allocs := func(orders int) float64 {
		r, w := recordRun(t)
		var cause domain.Event
		for i := range orders {
			w.current = Order{Stream: 0, Seq: i + 1}
			cause = domain.OutOfStock{Meta: domain.Meta{ID: w.nextEventID()}}
			recorder{r}.end(&w.actor, 0, cause, false, nil)
		}
		return testing.AllocsPerRun(5, func() { _ = r.history(true) })
	}
	few, many := allocs(10), allocs(2_000)
	assert.LessOrEqual(t, many-few, 4.0, "allocations of 2,000 orders' history (%v) beyond 10 orders' (%v)", many, few)
}

// An actor finds its own events by ID, and no other stream's, nor any past its log.
func TestAnActorFindsOnlyItsOwnEvents(t *testing.T) {
	a := &actor{}
	a.setStream(1)
	a.events = make([]eventRec, 3)
	for _, row := range []struct {
		id   string
		want int // index in a.events; -1: none
	}{{"e1-1", 0}, {"e1-3", 2}, {"e1-4", -1}, {"e0-2", -1}, {"e11-2", -1}, {"e1-0", -1}, {"x1-2", -1}, {"", -1}} {
		got := a.event(row.id)
		if row.want < 0 {
			assert.Nil(t, got, "event(%q)", row.id)
			continue
		}
		assert.Same(t, &a.events[row.want], got, "event(%q)", row.id)
	}
}

// A worker's transactions are timed in one wrapper that each reuses once the last is rolled back,
// so timing them allocates nothing beyond the store's own Begin; a transaction begun while
// another is open gets a wrapper of its own.
func TestAWorkersTransactionsShareOneTimedWrapper(t *testing.T) {
	r, w := recordRun(t)
	timed := timedStore{r.store}
	bare := testing.AllocsPerRun(100, func() {
		tx, err := r.store.Begin(w.ctx)
		require.NoError(t, err)
		tx.Rollback()
	})
	wrapped := testing.AllocsPerRun(100, func() {
		tx, err := timed.Begin(w.ctx)
		require.NoError(t, err)
		tx.Rollback()
	})
	assert.Equal(t, bare, wrapped, "allocations per Begin and Rollback, timed against the store's own")

	first, err := timed.Begin(w.ctx)
	require.NoError(t, err)
	nested, err := timed.Begin(w.ctx)
	require.NoError(t, err)
	assert.NotSame(t, first, nested, "a transaction begun while another is open has its own wrapper")
	nested.Rollback()
	first.Rollback()
	again, err := timed.Begin(w.ctx)
	require.NoError(t, err)
	assert.Same(t, first, again, "the worker's wrapper serves the next transaction")
	again.Rollback()
}
