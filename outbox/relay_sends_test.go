package outbox_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/outbox"
)

// guard bounds how long a test's sender waits for another send to start or end. Only a relay
// that sends fewer rows at once than the test asks for (which deadlocks the handoff) reaches it.
const guard = 10 * time.Second

// inFlight is a Sender's record of the sends a relay has in flight: their slots, the most at
// once, and the order sends started and ended in. Each row's send waits for a condition on the
// others (wait), so the tests decide interleavings by handoffs, not by timing.
type inFlight struct {
	index map[string]int // event ID -> commit position

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at every start and end
	slots    map[int]bool  // the slots of the sends in flight
	started  []int         // commit positions, in the order their sends started
	ended    []int         // and ended
	most     int
	problems []string
}

func newInFlight(ids []string) *inFlight {
	f := &inFlight{index: map[string]int{}, changed: make(chan struct{}), slots: map[int]bool{}}
	for i, id := range ids {
		f.index[id] = i
	}
	return f
}

// send returns a Sender that records each send and returns once wait(f, i) holds for the row
// at commit position i, or fails it after the guard.
func (f *inFlight) send(wait func(f *inFlight, i int) bool) outbox.Sender {
	return func(ctx context.Context, e domain.Event) error {
		i := f.index[e.Identity().ID]
		slot, ok := outbox.Slot(ctx)
		f.mu.Lock()
		if !ok || f.slots[slot] {
			f.problems = append(f.problems, fmt.Sprintf("row %d: slot %d, %v, taken %v", i, slot, ok, f.slots[slot]))
		}
		f.slots[slot] = true
		f.started = append(f.started, i)
		f.most = max(f.most, len(f.slots))
		f.notify()
		timeout := time.After(guard)
		for !wait(f, i) {
			ch := f.changed
			f.mu.Unlock()
			select {
			case <-ch:
			case <-timeout:
				f.mu.Lock()
				f.problems = append(f.problems, fmt.Sprintf("row %d waited in vain; started %v, ended %v", i, f.started, f.ended))
				f.mu.Unlock()
				return fmt.Errorf("row %d: handoff never came", i)
			}
			f.mu.Lock()
		}
		delete(f.slots, slot)
		f.ended = append(f.ended, i)
		f.notify()
		f.mu.Unlock()
		return nil
	}
}

func (f *inFlight) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// record returns the problems, the most sends in flight, and the start and end orders.
func (f *inFlight) record() (problems []string, most int, started, ended []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.problems), f.most, slices.Clone(f.started), slices.Clone(f.ended)
}

// window is the handoff that needs n sends in flight, for rows claimed batch at a time: row i's
// send ends only once every row of its claim from the first to row i+n-1 (or the claim's last)
// has started. No send ends before the first n rows of a claim are all in flight, so a relay
// with fewer slots deadlocks (until the guard), and one with n reaches n at once.
func window(n, batch, rows int) func(f *inFlight, i int) bool {
	return func(f *inFlight, i int) bool {
		lo := i / batch * batch
		for j := lo; j <= min(i+n-1, lo+batch-1, rows-1); j++ {
			if !slices.Contains(f.started, j) {
				return false
			}
		}
		return true
	}
}

func TestARelaySendsUpToSendsRowsAtOnceInTheirOwnSlots(t *testing.T) {
	for _, c := range []struct {
		name         string
		sends, batch int
		rows         int
		wantClaims   int
	}{
		{"one at a time, the default", 0, 8, 8, 2},
		{"two at once", 2, 8, 8, 2},
		{"four at once, over two claims", 4, 5, 8, 3},
		{"more slots than a claim has rows", 8, 3, 6, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, c.rows)
			f := newInFlight(r.ids)
			n := max(c.sends, 1)
			opts := []outbox.Option{outbox.WithClock(r.clock), outbox.WithPoll(time.Hour), outbox.WithBatch(c.batch)}
			if c.sends > 0 {
				opts = append(opts, outbox.WithSends(c.sends))
			}
			relay, err := outbox.New("r1", r.store, f.send(window(n, c.batch, c.rows)), opts...)
			require.NoError(t, err)
			stop := run(t, relay)
			r.idle(t, 1)
			require.NoError(t, stop())

			problems, most, started, _ := f.record()
			assert.Empty(t, problems, "slots and handoffs")
			assert.Equal(t, min(n, c.batch), most, "most sends in flight at once")
			assert.Equal(t, upTo(c.rows), sorted(started), "every row sent once")
			pending, done := r.store.OutboxCounts()
			assert.Equal(t, [2]int{0, c.rows}, [2]int{pending, done}, "pending and done rows")
			assert.Equal(t, outbox.Stats{Claims: c.wantClaims, Claimed: c.rows, Sent: c.rows}, relay.Stats())
		})
	}
}

// TestConcurrentSendsAreMarkedInCommitOrderWhateverOrderTheyEnd: four sends in flight end in
// reverse (row i's ends after row i+1's): the mails of one claim may overtake each other, but
// the claim is marked in one Done call in commit order, and the Marked hooks follow it.
func TestConcurrentSendsAreMarkedInCommitOrderWhateverOrderTheyEnd(t *testing.T) {
	r := newRig(t, 4)
	f := newInFlight(r.ids)
	reverse := func(f *inFlight, i int) bool {
		if i == 3 {
			return len(f.started) == 4
		}
		return slices.Contains(f.ended, i+1)
	}
	store := &doneRecorder{Store: r.store}
	var mu sync.Mutex
	var marked []string
	hook := func(_ context.Context, at outbox.Point, _ string, row outbox.Row) error {
		if at == outbox.Marked {
			mu.Lock()
			marked = append(marked, row.ID())
			mu.Unlock()
		}
		return nil
	}
	relay, err := outbox.New("r1", store, f.send(reverse), outbox.WithClock(r.clock), outbox.WithPoll(time.Hour),
		outbox.WithSends(4), outbox.WithHook(hook))
	require.NoError(t, err)
	stop := run(t, relay)
	r.idle(t, 1)
	require.NoError(t, stop())

	problems, _, started, ended := f.record()
	require.Empty(t, problems)
	assert.Equal(t, upTo(4), sorted(started), "every row sent once")
	assert.Equal(t, []int{3, 2, 1, 0}, ended, "ended newest first")
	assert.Equal(t, [][]string{r.ids}, store.Calls(), "one Done call, in commit order")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, r.ids, marked, "Marked hooks in commit order")
}

// TestACrashWithSendsInFlightMarksNothingAndTheNextRelayResendsTheClaim: four sends in flight,
// the hook crashes the relay right after row 1's send; the others finish, but Run marks and
// gives back nothing, so after the lease another relay sends the whole claim again.
func TestACrashWithSendsInFlightMarksNothingAndTheNextRelayResendsTheClaim(t *testing.T) {
	r := newRig(t, 6)
	f := newInFlight(r.ids)
	crash := func(_ context.Context, at outbox.Point, _ string, row outbox.Row) error {
		if at == outbox.Sent && row.ID() == r.ids[1] {
			return outbox.ErrCrash
		}
		return nil
	}
	relay, err := outbox.New("r1", r.store, f.send(window(4, 4, 4)), outbox.WithClock(r.clock), outbox.WithPoll(time.Hour),
		outbox.WithLease(time.Minute), outbox.WithBatch(4), outbox.WithSends(4), outbox.WithHook(crash))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = relay.Run(ctx)
	require.ErrorIs(t, err, outbox.ErrCrash)

	problems, _, started, _ := f.record()
	require.Empty(t, problems)
	assert.Equal(t, upTo(4), sorted(started), "the claim's four sends, and no new one after the crash")
	pending, done := r.store.OutboxCounts()
	assert.Equal(t, [2]int{6, 0}, [2]int{pending, done}, "nothing marked")
	assert.Equal(t, outbox.Stats{Claims: 1, Claimed: 4}, relay.Stats(), "nothing sent, retried or parked")

	r.clock.Advance(time.Minute)
	next := r.relay(t, "r2", outbox.WithBatch(6))
	stop := run(t, next)
	r.idle(t, 1)
	require.NoError(t, stop())
	assert.Equal(t, r.ids, r.mailed(), "the crashed claim's four rows sent again, then the rest")
	pending, done = r.store.OutboxCounts()
	assert.Equal(t, [2]int{0, 6}, [2]int{pending, done}, "all marked by the next relay")
}

// TestAStopWhileWaitingForASlotMarksTheSendsInFlightAndStartsNoOther: two slots, four rows;
// the relay's context ends while both sends are in flight. They finish and are marked; the
// other two rows are not sent and wait out the lease.
func TestAStopWhileWaitingForASlotMarksTheSendsInFlightAndStartsNoOther(t *testing.T) {
	r := newRig(t, 4)
	f := newInFlight(r.ids)
	stopped := make(chan struct{})
	gate := func(*inFlight, int) bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	relay, err := outbox.New("r1", r.store, f.send(gate), outbox.WithClock(r.clock), outbox.WithPoll(time.Hour), outbox.WithSends(2))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	f.awaitStarts(t, 2)
	cancel() // Run's context has ended before either send may end
	close(stopped)
	f.poke()
	require.NoError(t, <-done)

	problems, most, started, _ := f.record()
	require.Empty(t, problems)
	assert.Equal(t, 2, most, "sends in flight")
	assert.Equal(t, upTo(2), sorted(started), "no send started after the stop")
	pending, marked := r.store.OutboxCounts()
	assert.Equal(t, [2]int{2, 2}, [2]int{pending, marked}, "the two sent rows marked, two left")
	assert.Equal(t, outbox.Stats{Claims: 1, Claimed: 4, Sent: 2}, relay.Stats())
}

// awaitStarts waits until n sends have started, or fails the test after the guard.
func (f *inFlight) awaitStarts(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(guard)
	f.mu.Lock()
	for len(f.started) < n {
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("waited for %d sends to start; %d did", n, len(f.started))
		}
		f.mu.Lock()
	}
	f.mu.Unlock()
}

// poke wakes the senders to look at their conditions again.
func (f *inFlight) poke() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notify()
}

// upTo returns 0 to n-1.
func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func sorted(s []int) []int { return slices.Sorted(slices.Values(s)) }
