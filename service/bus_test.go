package service_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// note is a test event that carries a name, so tests can see the order of handling.
type note struct {
	domain.Meta
	Name string
}

func (n note) WithIdentity(m domain.Meta) domain.Event { n.Meta = m; return n }

// other is a second test event type.
type other struct{ domain.Meta }

func (o other) WithIdentity(m domain.Meta) domain.Event { o.Meta = m; return o }

// journal records what handlers saw, safely across goroutines.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, line)
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.lines...)
}

var errBoom = errors.New("boom")

func TestBusCallsHandlersInSubscriptionOrder(t *testing.T) {
	bus := service.NewBus()
	var j journal
	for _, name := range []string{"first", "second", "third"} {
		service.Subscribe(bus, func(_ context.Context, n note) error { j.add(name + ":" + n.Name); return nil })
	}
	require.NoError(t, bus.Handle(context.Background(), note{Name: "a"}, note{Name: "b"}))
	assert.Equal(t, []string{"first:a", "second:a", "third:a", "first:b", "second:b", "third:b"}, j.get())
}

func TestBusRoutesByExactType(t *testing.T) {
	bus := service.NewBus()
	var j journal
	service.Subscribe(bus, func(_ context.Context, n note) error { j.add("note"); return nil })
	service.Subscribe(bus, func(_ context.Context, o other) error { j.add("other"); return nil })
	require.NoError(t, bus.Handle(context.Background(), other{}, note{}))
	assert.Equal(t, []string{"other", "note"}, j.get())
}

func TestBusEventWithoutHandlerIsAnError(t *testing.T) {
	bus := service.NewBus()
	service.Subscribe(bus, func(context.Context, note) error { return nil })
	err := bus.Handle(context.Background(), other{Meta: domain.Meta{ID: "e7"}})
	require.ErrorIs(t, err, service.ErrNoHandler)
	assert.Contains(t, err.Error(), "service_test.other")
	assert.Contains(t, err.Error(), "e7")
}

func TestBusHandlesEventsRaisedByHandlersFIFOBeforeReturning(t *testing.T) {
	// a raises b and c; b raises d. FIFO gives a b c d; a nested call would give a b d c.
	bus := service.NewBus()
	var j journal
	raises := map[string][]string{"a": {"b", "c"}, "b": {"d"}}
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add(n.Name)
		for _, next := range raises[n.Name] {
			if err := bus.Handle(ctx, note{Name: next}); err != nil {
				return err
			}
		}
		j.add("done " + n.Name)
		return nil
	})
	require.NoError(t, bus.Handle(context.Background(), note{Name: "a"}))
	assert.Equal(t, []string{"a", "done a", "b", "done b", "c", "done c", "d", "done d"}, j.get())
}

func TestBusPropagatePolicyStopsAtFirstError(t *testing.T) {
	bus := service.NewBus() // Propagate is the default
	var j journal
	service.Subscribe(bus, func(_ context.Context, n note) error { j.add("failing " + n.Name); return errBoom })
	service.Subscribe(bus, func(_ context.Context, n note) error { j.add("second " + n.Name); return nil })
	err := bus.Handle(context.Background(), note{Name: "a"}, note{Name: "b"})
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, []string{"failing a"}, j.get(), "handlers run after the first error")
}

func TestBusCollectPolicyRunsEveryHandlerAndJoinsErrors(t *testing.T) {
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var j journal
	errOther := errors.New("other failure")
	service.Subscribe(bus, func(_ context.Context, n note) error { j.add("failing " + n.Name); return errBoom })
	service.Subscribe(bus, func(_ context.Context, n note) error { j.add("second " + n.Name); return nil })
	service.Subscribe(bus, func(_ context.Context, o other) error { j.add("other"); return errOther })
	err := bus.Handle(context.Background(), note{Name: "a"}, other{}, note{Name: "b"})
	require.ErrorIs(t, err, errBoom)
	require.ErrorIs(t, err, errOther)
	assert.Equal(t, []string{"failing a", "second a", "other", "failing b", "second b"}, j.get())
	assert.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 3, "one error per failed handler")
}

func TestBusTurnsPanicsIntoErrors(t *testing.T) {
	for _, policy := range []service.ErrorPolicy{service.Propagate, service.Collect} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			bus := service.NewBus(service.WithErrorPolicy(policy))
			var j journal
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add("panicking " + n.Name); panic("kaboom") })
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add("after " + n.Name); return nil })
			err := bus.Handle(context.Background(), note{Name: "a"}, note{Name: "b"})
			require.ErrorIs(t, err, service.ErrHandlerPanic)
			var pe *service.PanicError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "kaboom", pe.Value)
			assert.NotEmpty(t, pe.Stack)
			want := []string{"panicking a"}
			if policy == service.Collect {
				want = []string{"panicking a", "after a", "panicking b", "after b"}
			}
			assert.Equal(t, want, j.get())
			// The bus is still usable afterwards: its pooled state was reset.
			j.lines = nil
			err = bus.Handle(context.Background(), other{})
			assert.ErrorIs(t, err, service.ErrNoHandler)
			assert.NotErrorIs(t, err, service.ErrHandlerPanic)
		})
	}
}

func TestBusStopsEndlessChains(t *testing.T) {
	bus := service.NewBus(service.WithMessageLimit(50))
	handled := 0
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		handled++
		return bus.Handle(ctx, note{}) // every event raises another
	})
	err := bus.Handle(context.Background(), note{})
	require.ErrorIs(t, err, service.ErrMessageLimit)
	assert.Equal(t, 50, handled)
	assert.Contains(t, err.Error(), "50 messages handled, most often service_test.note (50 times), 1 still queued")
}

func TestBusMiddlewareWrapsHandlersOutermostFirst(t *testing.T) {
	var j journal
	tag := func(name string) service.Middleware {
		return func(next service.HandlerFunc) service.HandlerFunc {
			return func(ctx context.Context, e domain.Event) error {
				j.add("enter " + name)
				defer j.add("leave " + name)
				return next(ctx, e)
			}
		}
	}
	bus := service.NewBus(service.WithMiddleware(tag("outer"), tag("inner")))
	service.Subscribe(bus, func(context.Context, note) error { j.add("handler"); return nil })
	require.NoError(t, bus.Handle(context.Background(), note{}))
	assert.Equal(t, []string{"enter outer", "enter inner", "handler", "leave inner", "leave outer"}, j.get())
}

func TestBusServesManyGoroutinesWithSeparateQueues(t *testing.T) {
	bus := service.NewBus()
	var mu sync.Mutex
	perCaller := map[string][]string{}
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		caller := n.Name[:2]
		mu.Lock()
		perCaller[caller] = append(perCaller[caller], n.Name)
		mu.Unlock()
		if len(n.Name) < 5 {
			return bus.Handle(ctx, note{Name: n.Name + "+"})
		}
		return nil
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for range 100 {
				name := fmt.Sprintf("g%d", g)
				if err := bus.Handle(context.Background(), note{Name: name}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// Subscribing while others handle is safe.
	service.Subscribe(bus, func(context.Context, other) error { return nil })
	wg.Wait()
	for g := range 8 {
		name := fmt.Sprintf("g%d", g)
		got := perCaller[name]
		require.Len(t, got, 400, "events handled for caller %s", name)
		for i := 0; i < len(got); i += 4 {
			assert.Equal(t, []string{name, name + "+", name + "++", name + "+++"}, got[i:i+4], "chain of %s interleaved with another caller's", name)
		}
	}
}

func TestHandleOnAnotherBusInsideAHandlerIsSeparate(t *testing.T) {
	inner, outer := service.NewBus(), service.NewBus()
	var j journal
	service.Subscribe(inner, func(_ context.Context, n note) error { j.add("inner " + n.Name); return nil })
	service.Subscribe(outer, func(ctx context.Context, n note) error {
		j.add("outer " + n.Name)
		if n.Name == "a" {
			if err := outer.Handle(ctx, note{Name: "b"}); err != nil { // joins this call
				return err
			}
			return inner.Handle(ctx, note{Name: "x"}) // runs now, on the other bus
		}
		return nil
	})
	require.NoError(t, outer.Handle(context.Background(), note{Name: "a"}))
	assert.Equal(t, []string{"outer a", "inner x", "outer b"}, j.get())
}

// A message handed to another bus from inside a handler is caused by the message that handler is
// handling, whether it is sent alone (the bus's one-message path) or with others.
func TestAMessageOnAnotherBusPointsAtTheMessageBeingHandled(t *testing.T) {
	for _, tc := range []struct {
		name string
		send []domain.Message
	}{
		{"alone", []domain.Message{note{Name: "x"}}},
		{"with another", []domain.Message{note{Name: "x"}, note{Name: "y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, outer := service.NewBus(), service.NewBus()
			var seen []domain.Meta
			service.Subscribe(inner, func(_ context.Context, n note) error { seen = append(seen, n.Meta); return nil })
			service.Subscribe(outer, func(ctx context.Context, n note) error { return inner.Handle(ctx, tc.send...) })
			require.NoError(t, outer.Handle(context.Background(), note{Meta: domain.Meta{ID: "ev-cause"}, Name: "a"}))
			require.Len(t, seen, len(tc.send), "inner handler calls")
			for i, m := range seen {
				assert.NotEmpty(t, m.ID, "ID of inner message %d", i)
				assert.Equal(t, "ev-cause", m.CausationID, "cause of inner message %d", i)
			}
		})
	}
}

// kind[N] gives as many distinct event types as a test needs.
type kind[N any] struct{ domain.Meta }

func (k kind[N]) WithIdentity(m domain.Meta) domain.Event { k.Meta = m; return k }

func TestBusRoutesManyEventTypes(t *testing.T) {
	bus := service.NewBus()
	var j journal
	service.Subscribe(bus, func(context.Context, kind[[1]int]) error { j.add("1"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[2]int]) error { j.add("2"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[3]int]) error { j.add("3"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[4]int]) error { j.add("4"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[5]int]) error { j.add("5"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[6]int]) error { j.add("6"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[7]int]) error { j.add("7"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[8]int]) error { j.add("8"); return nil })
	require.NoError(t, bus.Handle(ctx, kind[[8]int]{}, kind[[1]int]{}))
	service.Subscribe(bus, func(context.Context, kind[[9]int]) error { j.add("9"); return nil })
	service.Subscribe(bus, func(context.Context, kind[[1]int]) error { j.add("1b"); return nil })
	require.NoError(t, bus.Handle(ctx, kind[[9]int]{}, kind[[1]int]{}, kind[[5]int]{}))
	assert.Equal(t, []string{"8", "1", "9", "1", "1b", "5"}, j.get())
	assert.ErrorIs(t, bus.Handle(ctx, note{}), service.ErrNoHandler, "with more types than are scanned")
}
