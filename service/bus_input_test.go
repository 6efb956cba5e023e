package service_test

import (
	"context"
	"math"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// pointerEvent is an event type whose methods a nil *pointerEvent also has: calling them panics.
type pointerEvent struct{ domain.Meta }

func (p pointerEvent) WithIdentity(m domain.Meta) domain.Event { p.Meta = m; return p }

// badIdentity is an event whose Identity panics.
type badIdentity struct{}

func (badIdentity) Identity() domain.Meta                   { panic("no identity") }
func (b badIdentity) WithIdentity(domain.Meta) domain.Event { return b }

func TestHandleRejectsNilMessagesBeforeHandlingAny(t *testing.T) {
	tests := []struct {
		name string
		msgs []domain.Message
	}{
		{"nil alone", []domain.Message{nil}},
		{"nil first", []domain.Message{nil, note{Name: "a"}}},
		{"nil between", []domain.Message{note{Name: "a"}, nil, note{Name: "b"}}},
		{"nil last", []domain.Message{note{Name: "a"}, note{Name: "b"}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j journal
			var traced []domain.Message
			bus := service.NewBus(service.WithTrace(func(_ context.Context, m domain.Message, _ error) { traced = append(traced, m) }))
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add(n.Name); return nil })
			var err error
			require.NotPanics(t, func() { err = bus.Handle(ctx, tt.msgs...) }, "Handle(%v)", tt.msgs)
			assert.ErrorIs(t, err, service.ErrNotMessage)
			assert.Contains(t, err.Error(), "is nil")
			assert.Empty(t, j.get(), "handled before the nil was rejected")
			assert.Empty(t, traced, "traced before the nil was rejected")
		})
	}
}

func TestHandleRejectsANilContext(t *testing.T) {
	bus := service.NewBus()
	handled := 0
	service.Subscribe(bus, func(context.Context, note) error { handled++; return nil })
	var err error
	//lint:ignore SA1012 a nil context is the input under test
	require.NotPanics(t, func() { err = bus.Handle(nil, note{}) })
	assert.ErrorIs(t, err, service.ErrNilContext)
	assert.Zero(t, handled)
}

func TestANilSentWhileJoiningGoesBackToItsHandlerAndQueuesNothing(t *testing.T) {
	var j journal
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var joinErr error
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add(n.Name)
		if n.Name == "a" {
			joinErr = bus.Handle(ctx, note{Name: "b"}, nil, note{Name: "c"})
			return nil
		}
		return nil
	})
	var err error
	require.NotPanics(t, func() { err = bus.Handle(ctx, note{Name: "a"}, note{Name: "d"}) })
	require.NoError(t, err, "the handler swallowed the error it got")
	assert.ErrorIs(t, joinErr, service.ErrNotMessage, "what the joining handler got")
	assert.Equal(t, []string{"a", "d"}, j.get(), "none of the joining handler's messages is queued")
}

func TestNoMessageHandlePanicsTheCaller(t *testing.T) {
	tests := []struct {
		name string
		msg  domain.Message
	}{
		{"nil pointer event with a handler", (*pointerEvent)(nil)},
		{"event whose Identity panics", badIdentity{}},
		{"neither a command nor an event", notAMessage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			handled := 0
			bus := service.NewBus(service.WithErrorPolicy(service.Collect), service.WithTrace(func(context.Context, domain.Message, error) {}))
			service.Subscribe(bus, func(context.Context, *pointerEvent) error { handled++; return nil })
			service.Subscribe(bus, func(context.Context, badIdentity) error { handled++; return nil })
			var notes []string
			service.Subscribe(bus, func(ctx context.Context, n note) error {
				notes = append(notes, n.Name)
				if n.Name == "first" {
					err := bus.Handle(ctx, note{Name: "sent with it"}, tt.msg)
					assert.ErrorIs(t, err, service.ErrNotMessage, "joining with %T", tt.msg)
				}
				return nil
			})
			var err error
			require.NotPanics(t, func() { err = bus.Handle(ctx, tt.msg) }, "Handle(%T)", tt.msg)
			assert.ErrorIs(t, err, service.ErrNotMessage, "Handle(%T)", tt.msg)
			require.NotPanics(t, func() { err = bus.Handle(ctx, note{Name: "first"}) }, "a handler joining %T", tt.msg)
			assert.NoError(t, err)
			assert.Equal(t, []string{"first"}, notes, "nothing the joining handler sent is queued")
			assert.Zero(t, handled, "handlers called with %T", tt.msg)
		})
	}
}

type ctxKey struct{}

// TestAKeptHandlerContextStaysSafe keeps a handler's ctx past its call, then uses it during later
// calls, which reuse the bus's pooled call state.
func TestAKeptHandlerContextStaysSafe(t *testing.T) {
	bus := service.NewBus()
	var j journal
	kept := map[string]context.Context{}
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add("start " + n.Name)
		defer j.add("end " + n.Name)
		switch n.Name {
		case "A":
			kept["A"] = ctx
		case "B":
			a := kept["A"]
			assert.Equal(t, "request A", a.Value(ctxKey{}), "A's ctx read during B")
			assert.NoError(t, a.Err())
			// Not B's call: it must run on its own, now, instead of joining B's queue.
			require.NoError(t, bus.Handle(a, note{Name: "with A's ctx"}))
		}
		return nil
	})
	ctxA, cancelA := context.WithCancel(context.WithValue(ctx, ctxKey{}, "request A"))
	require.NoError(t, bus.Handle(ctxA, note{Name: "A"}))
	require.NoError(t, bus.Handle(context.WithValue(ctx, ctxKey{}, "request B"), note{Name: "B"}))
	assert.Equal(t, []string{
		"start A", "end A",
		"start B", "start with A's ctx", "end with A's ctx", "end B",
	}, j.get())

	a := kept["A"]
	require.NotPanics(t, func() { _ = a.Err(); _, _ = a.Deadline(); _ = a.Done(); _ = a.Value(ctxKey{}) })
	cancelA()
	assert.ErrorIs(t, a.Err(), context.Canceled, "behaves as its parent: cancelling the parent reaches it")
	assert.Equal(t, ctxA.Done(), a.Done())
}

// TestAContextKeptByAGoroutineIsSafeAfterTheCall hands a handler's ctx to a goroutine that uses it
// only after the call is over and other calls ran; run with -race.
func TestAContextKeptByAGoroutineIsSafeAfterTheCall(t *testing.T) {
	bus := service.NewBus()
	kept := make(chan context.Context, 1)
	var j journal
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add(n.Name)
		if n.Name == "first" {
			kept <- ctx
		}
		return nil
	})
	require.NoError(t, bus.Handle(context.WithValue(ctx, ctxKey{}, "first call"), note{Name: "first"}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		k := <-kept
		assert.NoError(t, k.Err())
		assert.Equal(t, "first call", k.Value(ctxKey{}))
		assert.NoError(t, bus.Handle(k, note{Name: "late"}))
	}()
	<-done
	require.NoError(t, bus.Handle(ctx, note{Name: "third"}))
	assert.Equal(t, []string{"first", "late", "third"}, j.get())
}

func TestNewBusRefusesAMessageLimitThatIsNotOne(t *testing.T) {
	for _, n := range []int{0, -2, math.MinInt} {
		assert.PanicsWithValue(t,
			"service: NewBus: WithMessageLimit("+strconv.Itoa(n)+"): the limit must be positive or service.Unlimited",
			func() { service.NewBus(service.WithMessageLimit(n)) }, "WithMessageLimit(%d)", n)
	}
	assert.Panics(t, func() {
		service.Bootstrap(nil, nil, service.WithBusOptions(service.WithMessageLimit(0)))
	}, "Bootstrap builds its bus with NewBus")
	for _, n := range []int{1, service.DefaultMessageLimit, service.Unlimited} {
		assert.NotPanics(t, func() { service.NewBus(service.WithMessageLimit(n)) }, "WithMessageLimit(%d)", n)
	}
}

func TestUnlimitedHandlesChainsLongerThanTheDefault(t *testing.T) {
	bus := service.NewBus(service.WithMessageLimit(service.Unlimited))
	want := service.DefaultMessageLimit + 5
	handled := 0
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		if handled++; handled < want {
			return bus.Handle(ctx, note{})
		}
		return nil
	})
	require.NoError(t, bus.Handle(ctx, note{}))
	assert.Equal(t, want, handled)
}

func TestTheMessageLimitNamesTheTypeThatLooped(t *testing.T) {
	bus := service.NewBus(service.WithMessageLimit(50))
	service.Subscribe(bus, func(ctx context.Context, o other) error { return bus.Handle(ctx, note{}) })
	service.Subscribe(bus, func(ctx context.Context, n note) error { return bus.Handle(ctx, note{}) })
	err := bus.Handle(ctx, other{}, other{})
	require.ErrorIs(t, err, service.ErrMessageLimit)
	assert.Contains(t, err.Error(), "50 messages handled, most often service_test.note (48 times), 2 still queued")
}

// TestWhatAChainCommittedBeforeTheLimitStaysCommitted is the endless chain: an Allocated
// handler that allocates again, stopped by the limit after 10 messages.
func TestWhatAChainCommittedBeforeTheLimitStaysCommitted(t *testing.T) {
	s := newChainStack(t, service.WithMessageLimit(10))
	require.NoError(t, s.send(t, domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 100}))
	bus := s.uow.Bus()
	n := 0
	service.Subscribe(bus, func(ctx context.Context, e domain.Allocated) error {
		n++
		return bus.Handle(ctx, domain.Allocate{OrderID: "again-" + strconv.Itoa(n), SKU: "LAMP", Qty: 1})
	})
	_, err := service.Allocate(ctx, s.uow, "o1", "LAMP", 1)
	require.ErrorIs(t, err, service.ErrPublish)
	require.ErrorIs(t, err, service.ErrMessageLimit)
	assert.Contains(t, err.Error(), "most often domain.Allocated (5 times)")
	p, _ := s.store.Product("LAMP")
	// Handled: Allocated o1, then Allocate and Allocated for again-1 .. again-4, then Allocate again-5.
	assert.Equal(t, 6, p.Batches[0].Allocations(), "o1 and the 5 Allocate commands handled stay committed")
}

func TestCommandsSentStraightToTheBusGetIDsAndTheirEventsPointAtThem(t *testing.T) {
	s := newChainStack(t)
	bookReallocation(t, s) // commands without IDs
	setup := slices.Clone(s.trail.msgs)
	s.trail.msgs = nil
	bus := s.uow.Bus()
	require.NoError(t, bus.Handle(ctx, domain.ChangeBatchQuantity{Ref: "batch1", Qty: 25}))
	msgs := s.trail.msgs
	require.Equal(t, []string{"ChangeBatchQuantity batch1 25", "Deallocated order2 20", "Allocate order2 20", "Allocated order2 batch2"},
		s.trail.lines())
	assert.Empty(t, msgs[0].Identity().CausationID, "the command is a root")
	for i := 1; i < len(msgs); i++ {
		assert.Equal(t, msgs[i-1].Identity().ID, msgs[i].Identity().CausationID, "%s caused by %s", describe(msgs[i]), describe(msgs[i-1]))
	}
	ids := map[string]string{}
	for _, m := range append(setup, msgs...) {
		id := m.Identity().ID
		require.NotEmpty(t, id, "%s has an ID", describe(m))
		require.NotContains(t, ids, id, "%s and %s share an ID", describe(m), ids[id])
		ids[id] = describe(m)
	}
}

func TestMessagesWithoutIDsTakeThemFromTheContextsSource(t *testing.T) {
	s := newChainStack(t)
	n := 0
	ids := service.WithIDs(ctx, func() string { n++; return "w-" + strconv.Itoa(n) })
	require.NoError(t, s.uow.Bus().Handle(ids,
		domain.CreateBatch{Ref: "b1", SKU: "LAMP", Qty: 10},
		domain.Allocate{Meta: domain.Meta{ID: "mine"}, OrderID: "o1", SKU: "LAMP", Qty: 1},
	))
	var got []domain.Meta
	for _, m := range s.trail.msgs {
		got = append(got, m.Identity())
	}
	assert.Equal(t, []domain.Meta{
		{ID: "w-1"},                      // CreateBatch, stamped by the bus
		{ID: "mine"},                     // Allocate kept its own
		{ID: "w-2", CausationID: "mine"}, // Allocated, stamped by the unit of work
	}, got)
}

func TestEventsWithoutIDsGetThem(t *testing.T) {
	bus := service.NewBus()
	var got []domain.Meta
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		got = append(got, n.Meta)
		if n.Name == "a" {
			return bus.Handle(ctx, note{Name: "b"})
		}
		return nil
	})
	require.NoError(t, bus.Handle(ctx, note{Name: "a"}))
	require.Len(t, got, 2)
	assert.NotEmpty(t, got[0].ID)
	assert.Equal(t, domain.Meta{ID: got[1].ID, CausationID: got[0].ID}, got[1])
	assert.NotEqual(t, got[0].ID, got[1].ID)
}
