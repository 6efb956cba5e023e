// Package publishertest checks implementations of service.Publisher, in the manner of
// testing/fstest and of watermill's universal pub/sub tests: one contract that the fake and every
// broker adapter run, with the checks of a guarantee the implementation does not declare skipped.
//
// The contract, for every publisher:
//   - Publish returns nil only once the broker holds the event, on the channel it was published
//     on and no other;
//   - every event published once is held once, also when many goroutines publish at the same time;
//   - a context already done publishes nothing and Publish returns the context's error.
//
// And for the features declared in Features: order per channel, de-duplication by event ID, and a
// connection that drops and recovers.
package publishertest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Features declares the guarantees a publisher gives beyond the base contract.
type Features struct {
	// Ordered: events published one after another on a channel are held in that order, and so are
	// the events of each goroutine when many publish at once.
	Ordered bool
	// Deduplicates: an event published again with the same ID within the duplicate window is held
	// once, Publish returning nil both times; an event without an ID is rejected. The window must be
	// longer than a check takes (minutes, not milliseconds).
	Deduplicates bool
	// Reconnects: Harness.Drop and Harness.Restore are set. While the connection is down Publish
	// returns an error instead of buffering; after Restore the events held before the drop are
	// still held (a restarted broker kept them) and publishing works again.
	Reconnects bool
}

// Harness is one publisher under test with the means to look at its broker.
type Harness struct {
	Publisher service.Publisher
	// Held returns the events the broker holds on channel, in the broker's order.
	Held func(ctx context.Context, channel string) ([]domain.Event, error)
	// Drop takes the broker or the connection down and returns once the publisher has noticed
	// (its next Publish will see the outage, not race it). Needed with Features.Reconnects.
	Drop func(ctx context.Context) error
	// Restore brings the broker or the connection back and returns once the publisher is
	// connected again. Needed with Features.Reconnects.
	Restore func(ctx context.Context) error
}

// Bound caps every wait of a check; a check that hits it fails. It bounds a failure, it does not
// measure anything.
const Bound = 30 * time.Second

// TestPublisher runs the contract against harnesses made by newHarness, which must return a
// publisher on an empty broker on every call (cleanup is newHarness's business, via t.Cleanup).
func TestPublisher(t *testing.T, f Features, newHarness func(t *testing.T) Harness) {
	t.Helper()
	checks := []struct {
		name  string
		needs bool
		check func(t *testing.T, ctx context.Context, h Harness)
	}{
		{"a published event is held on its channel only", true, heldOnItsChannel},
		{"an event published once is held once under concurrent publishers", true, concurrentOnce},
		{"a done context publishes nothing and returns its error", true, doneContext},
		{"events on a channel are held in publish order", f.Ordered, ordered},
		{"each goroutine's events keep their order under concurrent publishers", f.Ordered, concurrentOrder},
		{"an event published again within the window is held once", f.Deduplicates, republished},
		{"events with equal content and different IDs are all held", f.Deduplicates, distinctIDs},
		{"an event without an ID is rejected", f.Deduplicates, noID},
		{"a dropped connection fails publishes and recovers with the history kept", f.Reconnects, reconnect},
		{"an event published before a drop and again after it is held once", f.Reconnects && f.Deduplicates, reconnectDedup},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !c.needs {
				t.Skip("feature not declared")
			}
			ctx, cancel := context.WithTimeout(t.Context(), Bound)
			defer cancel()
			h := newHarness(t)
			require.NotNil(t, h.Publisher, "harness publisher")
			require.NotNil(t, h.Held, "harness Held")
			c.check(t, ctx, h)
		})
	}
}

const (
	channel = service.AllocatedChannel
	other   = "other_channel"
)

// event returns an Allocated with the given ID and content taken from n.
func event(id string, n int) domain.Event {
	return domain.Allocated{Meta: domain.Meta{ID: id, CausationID: "cmd-" + id}, OrderID: fmt.Sprintf("order-%d", n),
		SKU: "LAMP", Qty: n%7 + 1, BatchRef: fmt.Sprintf("batch-%d", n%3)}
}

func events(prefix string, n int) []domain.Event {
	es := make([]domain.Event, n)
	for i := range es {
		es[i] = event(fmt.Sprintf("%s-%d", prefix, i), i)
	}
	return es
}

func held(t *testing.T, ctx context.Context, h Harness, ch string) []domain.Event {
	t.Helper()
	es, err := h.Held(ctx, ch)
	require.NoError(t, err, "Held(%q)", ch)
	return es
}

func publish(t *testing.T, ctx context.Context, h Harness, ch string, es ...domain.Event) {
	t.Helper()
	for _, e := range es {
		require.NoError(t, h.Publisher.Publish(ctx, ch, e), "Publish(%q, %s)", ch, e.Identity().ID)
	}
}

func ids(es []domain.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Identity().ID
	}
	return out
}

func heldOnItsChannel(t *testing.T, ctx context.Context, h Harness) {
	a, b := event("a", 1), event("b", 2)
	publish(t, ctx, h, channel, a)
	publish(t, ctx, h, other, b)
	assert.Equal(t, []domain.Event{a}, held(t, ctx, h, channel), "held on %s", channel)
	assert.Equal(t, []domain.Event{b}, held(t, ctx, h, other), "held on %s", other)
}

const goroutines, perGoroutine = 8, 25

// publishConcurrently has goroutines publish their own events on channel at once and returns them.
func publishConcurrently(t *testing.T, ctx context.Context, h Harness) [][]domain.Event {
	t.Helper()
	sent := make([][]domain.Event, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		sent[g] = events(fmt.Sprintf("g%d", g), perGoroutine)
		wg.Go(func() {
			for _, e := range sent[g] {
				if err := h.Publisher.Publish(ctx, channel, e); err != nil {
					errs[g] = fmt.Errorf("Publish(%s): %w", e.Identity().ID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for g, err := range errs {
		require.NoError(t, err, "goroutine %d", g)
	}
	return sent
}

func concurrentOnce(t *testing.T, ctx context.Context, h Harness) {
	sent := publishConcurrently(t, ctx, h)
	var want []string
	for _, es := range sent {
		want = append(want, ids(es)...)
	}
	assert.ElementsMatch(t, want, ids(held(t, ctx, h, channel)), "every event held exactly once")
}

func concurrentOrder(t *testing.T, ctx context.Context, h Harness) {
	sent := publishConcurrently(t, ctx, h)
	got := held(t, ctx, h, channel)
	require.Len(t, got, goroutines*perGoroutine)
	byPrefix := map[string][]string{}
	for _, e := range got {
		id := e.Identity().ID
		g, _, _ := strings.Cut(id, "-")
		byPrefix[g] = append(byPrefix[g], id)
	}
	for g, es := range sent {
		assert.Equal(t, ids(es), byPrefix[fmt.Sprintf("g%d", g)], "goroutine %d's events in its order", g)
	}
}

func doneContext(t *testing.T, ctx context.Context, h Harness) {
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Unix(0, 0))
	defer cancel2()
	rows := []struct {
		name string
		ctx  context.Context
		want error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"past its deadline", expired, context.DeadlineExceeded},
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := h.Publisher.Publish(r.ctx, channel, event(fmt.Sprintf("done-%d", i), i))
			assert.ErrorIs(t, err, r.want, "Publish with a %s context", r.name)
		})
	}
	assert.Empty(t, held(t, ctx, h, channel), "nothing published with a done context")
}

func ordered(t *testing.T, ctx context.Context, h Harness) {
	a, b := events("a", 20), events("b", 20)
	for i := range a { // interleave two channels
		publish(t, ctx, h, channel, a[i])
		publish(t, ctx, h, other, b[i])
	}
	assert.Equal(t, a, held(t, ctx, h, channel), "order on %s", channel)
	assert.Equal(t, b, held(t, ctx, h, other), "order on %s", other)
}

func republished(t *testing.T, ctx context.Context, h Harness) {
	a, b := event("a", 1), event("b", 2)
	publish(t, ctx, h, channel, a, b, a, a, b)
	assert.Equal(t, []domain.Event{a, b}, held(t, ctx, h, channel), "re-published events held once, first order")
}

func distinctIDs(t *testing.T, ctx context.Context, h Harness) {
	a := event("a", 1).(domain.Allocated)
	b := a
	b.ID = "b"
	publish(t, ctx, h, channel, a, b)
	assert.Equal(t, []string{"a", "b"}, ids(held(t, ctx, h, channel)), "same content, different IDs")
}

func noID(t *testing.T, ctx context.Context, h Harness) {
	err := h.Publisher.Publish(ctx, channel, event("", 1))
	assert.Error(t, err, "Publish of an event without an ID")
	assert.Empty(t, held(t, ctx, h, channel), "nothing held")
}

func reconnect(t *testing.T, ctx context.Context, h Harness) {
	require.NotNil(t, h.Drop, "harness Drop")
	require.NotNil(t, h.Restore, "harness Restore")
	before, during, after := event("before", 1), event("during", 2), event("after", 3)
	publish(t, ctx, h, channel, before)

	require.NoError(t, h.Drop(ctx), "Drop")
	err := h.Publisher.Publish(ctx, channel, during)
	require.Error(t, err, "Publish while the connection is down claims delivery")
	require.NoError(t, ctx.Err(), "Publish waited for the outage to end instead of failing")

	require.NoError(t, h.Restore(ctx), "Restore")
	assert.Equal(t, []domain.Event{before}, held(t, ctx, h, channel),
		"after recovery: the event from before is kept and the failed one was not buffered and sent")
	publish(t, ctx, h, channel, during, after) // the caller's retry, then business as usual
	assert.Equal(t, []domain.Event{before, during, after}, held(t, ctx, h, channel))
}

func reconnectDedup(t *testing.T, ctx context.Context, h Harness) {
	a := event("a", 1)
	publish(t, ctx, h, channel, a)
	require.NoError(t, h.Drop(ctx), "Drop")
	require.NoError(t, h.Restore(ctx), "Restore")
	publish(t, ctx, h, channel, a)
	assert.Equal(t, []domain.Event{a}, held(t, ctx, h, channel), "a re-published after recovery is held once")
}
