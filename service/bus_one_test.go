package service_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// A Handle call of one routed message on a bus without a trace takes a path of its own: no queue
// until a handler sends more. These tests pin that it keeps every semantic of the general path;
// none of them sets a trace, and each hands Handle one message.

func TestOneMessageKeepsTheErrorPolicies(t *testing.T) {
	tests := []struct {
		name    string
		policy  service.ErrorPolicy
		first   func(n note) error
		want    []string
		wantErr error
	}{
		{"propagate stops at an error", service.Propagate, func(note) error { return errBoom }, []string{"first"}, errBoom},
		{"collect runs the next handler after an error", service.Collect, func(note) error { return errBoom }, []string{"first", "second"}, errBoom},
		{"propagate stops at a panic", service.Propagate, func(note) error { panic("kaboom") }, []string{"first"}, service.ErrHandlerPanic},
		{"collect runs the next handler after a panic", service.Collect, func(note) error { panic("kaboom") }, []string{"first", "second"}, service.ErrHandlerPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := service.NewBus(service.WithErrorPolicy(tt.policy))
			var j journal
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add("first"); return tt.first(n) })
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add("second"); return nil })
			service.Subscribe(bus, func(context.Context, other) error { return nil })
			err := bus.Handle(ctx, note{Name: "a"})
			require.ErrorIs(t, err, tt.wantErr)
			assert.Regexp(t, `^handle service_test.note ev-[0-9]+: `, err.Error(), "the error names the message and the ID the bus gave it")
			assert.Equal(t, tt.want, j.get())

			require.NoError(t, bus.Handle(ctx, other{}), "after the failure")
		})
	}
}

func TestOneCommandKeepsItsErrorsAndPanics(t *testing.T) {
	tests := []struct {
		name    string
		handler func(context.Context, domain.Allocate) error
		wantErr error
	}{
		{"failing", func(context.Context, domain.Allocate) error { return errBoom }, errBoom},
		{"panicking", func(context.Context, domain.Allocate) error { panic("kaboom") }, service.ErrHandlerPanic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := service.NewBus(service.WithErrorPolicy(service.Collect))
			service.HandleCommand(bus, tt.handler)
			err := bus.Handle(ctx, domain.Allocate{Meta: domain.Meta{ID: "c1"}, OrderID: "o1", SKU: "LAMP", Qty: 1})
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), "handle domain.Allocate c1: ")
		})
	}
}

func TestOneMessageWhoseIdentityPanicsIsNotHandled(t *testing.T) {
	tests := []struct {
		name string
		msg  domain.Message
	}{
		{"nil pointer event with a handler", (*pointerEvent)(nil)},
		{"event whose Identity panics", badIdentity{}},
	}
	for _, tt := range tests {
		for _, policy := range []service.ErrorPolicy{service.Propagate, service.Collect} {
			t.Run(fmt.Sprint(tt.name, " ", policy), func(t *testing.T) {
				handled := 0
				bus := service.NewBus(service.WithErrorPolicy(policy))
				service.Subscribe(bus, func(context.Context, *pointerEvent) error { handled++; return nil })
				service.Subscribe(bus, func(context.Context, badIdentity) error { handled++; return nil })
				var notes []string
				service.Subscribe(bus, func(ctx context.Context, n note) error {
					notes = append(notes, n.Name)
					if n.Name == "first" {
						assert.ErrorIs(t, bus.Handle(ctx, note{Name: "sent with it"}, tt.msg), service.ErrNotMessage, "joining with %T", tt.msg)
					}
					return nil
				})
				var err error
				require.NotPanics(t, func() { err = bus.Handle(ctx, tt.msg) }, "Handle(%T)", tt.msg)
				require.ErrorIs(t, err, service.ErrNotMessage)
				assert.Contains(t, err.Error(), "(no identity)")
				require.NotPanics(t, func() { err = bus.Handle(ctx, note{Name: "first"}) }, "a handler joining %T", tt.msg)
				assert.NoError(t, err)
				assert.Equal(t, []string{"first"}, notes, "nothing the joining handler sent is queued")
				assert.Zero(t, handled)
			})
		}
	}
}

// TestAMessageSentDuringAOneMessageCallWaitsForTheOtherHandlers: what the first handler of a
// lone message sends is handled after that message's last handler, as it would be in a queue.
func TestAMessageSentDuringAOneMessageCallWaitsForTheOtherHandlers(t *testing.T) {
	tests := []struct {
		name   string
		policy service.ErrorPolicy
		second func(n note) error // the second handler, after the first sent "x"
		want   []string
	}{
		{"no failure", service.Propagate, func(note) error { return nil }, []string{"first a", "second a", "first x", "second x"}},
		{"propagate drops it after an error", service.Propagate, func(n note) error { return failOn(n, "a") }, []string{"first a", "second a"}},
		{"collect handles it after an error", service.Collect, func(n note) error { return failOn(n, "a") }, []string{"first a", "second a", "first x", "second x"}},
		{"propagate drops it after a panic", service.Propagate, func(n note) error { return panicOn(n, "a") }, []string{"first a", "second a"}},
		{"collect handles it after a panic", service.Collect, func(n note) error { return panicOn(n, "a") }, []string{"first a", "second a", "first x", "second x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := service.NewBus(service.WithErrorPolicy(tt.policy))
			var j journal
			var ids []domain.Meta
			service.Subscribe(bus, func(ctx context.Context, n note) error {
				j.add("first " + n.Name)
				ids = append(ids, n.Meta)
				if n.Name == "a" {
					return bus.Handle(ctx, note{Name: "x"})
				}
				return nil
			})
			service.Subscribe(bus, func(_ context.Context, n note) error {
				j.add("second " + n.Name)
				return tt.second(n)
			})
			err := bus.Handle(ctx, note{Name: "a"})
			assert.Equal(t, tt.want, j.get())
			if len(tt.want) == 2 {
				require.Error(t, err)
				return
			}
			if tt.policy == service.Collect && len(ids) == 2 {
				require.Error(t, err, "the failure of a is still returned")
			}
			require.Len(t, ids, 2)
			assert.Equal(t, ids[0].ID, ids[1].CausationID, "x is caused by a")
		})
	}
}

func failOn(n note, name string) error {
	if n.Name == name {
		return errBoom
	}
	return nil
}

func panicOn(n note, name string) error {
	if n.Name == name {
		panic("kaboom")
	}
	return nil
}

func TestALimitOfOneStopsTheFirstMessageAHandlerSends(t *testing.T) {
	bus := service.NewBus(service.WithMessageLimit(1))
	handled := 0
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		handled++
		return bus.Handle(ctx, note{})
	})
	err := bus.Handle(ctx, note{})
	require.ErrorIs(t, err, service.ErrMessageLimit)
	assert.Equal(t, 1, handled)
	assert.Contains(t, err.Error(), "1 messages handled, most often service_test.note (1 times), 1 still queued")
}

func TestMiddlewareSeesTheIDTheBusGaveALoneMessage(t *testing.T) {
	var seen []string
	record := func(next service.HandlerFunc) service.HandlerFunc {
		return func(ctx context.Context, e domain.Event) error {
			seen = append(seen, "middleware "+e.Identity().ID)
			return next(ctx, e)
		}
	}
	bus := service.NewBus(service.WithMiddleware(record))
	service.Subscribe(bus, func(_ context.Context, n note) error { seen = append(seen, "handler "+n.ID); return nil })
	require.NoError(t, bus.Handle(ctx, note{}))
	require.Len(t, seen, 2)
	id := seen[0][len("middleware "):]
	assert.Regexp(t, `^ev-[0-9]+$`, id)
	assert.Equal(t, "handler "+id, seen[1])
}

// TestIDsFromTheBusCounterAreUniqueAndWellFormed sends enough messages without IDs, from several
// goroutines, to cross the blocks of numbers the bus hands its call states and the digits'
// carries (9 to 10, 99 to 100, 999 to 1000): every ID is "ev-" and a number without leading
// zeros, and no two are the same.
func TestIDsFromTheBusCounterAreUniqueAndWellFormed(t *testing.T) {
	const goroutines, each = 4, 700
	bus := service.NewBus()
	var mu sync.Mutex
	seen := map[string]int{}
	service.Subscribe(bus, func(_ context.Context, n note) error {
		mu.Lock()
		defer mu.Unlock()
		seen[n.ID]++
		return nil
	})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := bus.Handle(ctx, note{}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, goroutines*each, "distinct IDs")
	form := regexp.MustCompile(`^ev-[1-9][0-9]*$`)
	most := uint64(0)
	for id, n := range seen {
		assert.Equal(t, 1, n, "times %s was handed out", id)
		require.Regexp(t, form, id)
		v, err := strconv.ParseUint(id[len("ev-"):], 10, 64)
		require.NoError(t, err)
		most = max(most, v)
	}
	assert.Greater(t, most, uint64(1000), "the IDs crossed from three digits to four")
}

// ownIdentity embeds Meta but declares an Identity of its own, which does not return that Meta.
type ownIdentity struct {
	domain.Meta
	Key string
}

func (o ownIdentity) Identity() domain.Meta                   { return domain.Meta{ID: "own-" + o.Key} }
func (o ownIdentity) WithIdentity(m domain.Meta) domain.Event { o.Meta = m; return o }

// TestATypesOwnIdentityIsAsked: the bus reads an embedded Meta in place only where Identity is
// Meta's; a type with an Identity of its own is asked, alone or sent by a handler.
func TestATypesOwnIdentityIsAsked(t *testing.T) {
	for _, joined := range []bool{false, true} {
		t.Run(fmt.Sprint("joined=", joined), func(t *testing.T) {
			bus := service.NewBus(service.WithErrorPolicy(service.Collect))
			var causes []string
			service.Subscribe(bus, func(ctx context.Context, o ownIdentity) error {
				if err := bus.Handle(ctx, note{Name: "caused"}); err != nil {
					return err
				}
				return errBoom
			})
			service.Subscribe(bus, func(ctx context.Context, n note) error {
				if n.Name == "start" {
					return bus.Handle(ctx, ownIdentity{Key: "k"})
				}
				causes = append(causes, n.CausationID)
				return nil
			})
			var err error
			if joined {
				err = bus.Handle(ctx, note{Name: "start"})
			} else {
				err = bus.Handle(ctx, ownIdentity{Key: "k"})
			}
			require.ErrorIs(t, err, errBoom)
			assert.Contains(t, err.Error(), "handle service_test.ownIdentity own-k: ")
			assert.Equal(t, []string{"own-k"}, causes, "what the handler sent points at the ID Identity gave")
		})
	}
}

// TestAContextReadWhileItsCallEndsKeepsItsOwnValues hands each call's ctx to a goroutine that
// reads it while the call ends and the next calls, with other parents, reuse the call state the
// ctx led to: every read must see its own call's value. Run with -race.
func TestAContextReadWhileItsCallEndsKeepsItsOwnValues(t *testing.T) {
	bus := service.NewBus()
	var wg sync.WaitGroup
	var mu sync.Mutex
	wrong := map[string]string{}
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		wg.Go(func() {
			for range 200 {
				if v, _ := ctx.Value(ctxKey{}).(string); v != n.Name {
					mu.Lock()
					wrong[n.Name] = v
					mu.Unlock()
					return
				}
			}
		})
		return nil
	})
	for i := range 300 {
		name := "call " + strconv.Itoa(i)
		require.NoError(t, bus.Handle(context.WithValue(ctx, ctxKey{}, name), note{Name: name}))
	}
	wg.Wait()
	assert.Empty(t, wrong, "calls whose kept ctx read another call's value")
}

// TestAContextDerivedFromAHandlersJoinsItsCall: a handler that hands the bus a ctx it derived
// from its own (a value, a deadline) still joins the running call, first in first out.
func TestAContextDerivedFromAHandlersJoinsItsCall(t *testing.T) {
	derive := map[string]func(context.Context) context.Context{
		"with a value": func(ctx context.Context) context.Context { return context.WithValue(ctx, ctxKey{}, "derived") },
		"with a deadline": func(ctx context.Context) context.Context {
			ctx, cancel := context.WithTimeout(ctx, time.Hour)
			t.Cleanup(cancel)
			return ctx
		},
	}
	for name, f := range derive {
		t.Run(name, func(t *testing.T) {
			bus := service.NewBus()
			var j journal
			var metas []domain.Meta
			service.Subscribe(bus, func(ctx context.Context, n note) error {
				j.add("first " + n.Name)
				metas = append(metas, n.Meta)
				if n.Name == "a" {
					return bus.Handle(f(ctx), note{Name: "x"})
				}
				return nil
			})
			service.Subscribe(bus, func(_ context.Context, n note) error { j.add("second " + n.Name); return nil })
			require.NoError(t, bus.Handle(ctx, note{Name: "a"}))
			assert.Equal(t, []string{"first a", "second a", "first x", "second x"}, j.get(), "x joined a's call")
			require.Len(t, metas, 2)
			assert.Equal(t, metas[0].ID, metas[1].CausationID)
		})
	}
}

// TestAJoinedMessageTakesItsIDFromTheContextsSource: a message a handler sends without an ID
// gets one from the source WithIDs put on the call's ctx, whether or not the call's first
// message needed one; a source that panics is the joining handler's error.
func TestAJoinedMessageTakesItsIDFromTheContextsSource(t *testing.T) {
	tests := []struct {
		name  string
		first note
		want  []domain.Meta
	}{
		{"first stamped by the source", note{Name: "a"}, []domain.Meta{{ID: "w-1"}, {ID: "w-2", CausationID: "w-1"}}},
		{"first with an ID of its own", note{Meta: domain.Meta{ID: "mine"}, Name: "a"}, []domain.Meta{{ID: "mine"}, {ID: "w-1", CausationID: "mine"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bus := service.NewBus()
			n := 0
			ids := service.WithIDs(ctx, func() string { n++; return "w-" + strconv.Itoa(n) })
			var got []domain.Meta
			service.Subscribe(bus, func(ctx context.Context, e note) error {
				got = append(got, e.Meta)
				if e.Name == "a" {
					return bus.Handle(ctx, note{Name: "b"})
				}
				return nil
			})
			require.NoError(t, bus.Handle(ids, tt.first))
			assert.Equal(t, tt.want, got)
		})
	}
	t.Run("a source that panics", func(t *testing.T) {
		bus := service.NewBus()
		n := 0
		ids := service.WithIDs(ctx, func() string {
			if n++; n > 1 {
				panic("out of IDs")
			}
			return "w-1"
		})
		var joinErr error
		handled := 0
		service.Subscribe(bus, func(ctx context.Context, e note) error {
			handled++
			if e.Name == "a" {
				joinErr = bus.Handle(ctx, note{Name: "b"})
			}
			return nil
		})
		require.NotPanics(t, func() { require.NoError(t, bus.Handle(ids, note{Name: "a"})) })
		assert.ErrorIs(t, joinErr, service.ErrNotMessage)
		assert.Equal(t, 1, handled, "the message without an ID was not queued")
	})
}
