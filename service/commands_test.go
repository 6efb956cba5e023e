package service_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// order is a test command.
type order struct {
	domain.Meta
	Name string
}

func (order) IsCommand() {}

func (o order) WithIdentity(m domain.Meta) domain.Command { o.Meta = m; return o }

// notAMessage has an identity but is neither a command nor an event.
type notAMessage struct{ domain.Meta }

func TestCommandHasExactlyOneHandler(t *testing.T) {
	bus := service.NewBus()
	service.HandleCommand(bus, func(context.Context, order) error { return nil })
	assert.Panics(t, func() { service.HandleCommand(bus, func(context.Context, order) error { return nil }) })
}

func TestFailingCommandStopsTheCallUnderEitherPolicy(t *testing.T) {
	for _, policy := range []service.ErrorPolicy{service.Propagate, service.Collect} {
		bus := service.NewBus(service.WithErrorPolicy(policy))
		var j journal
		service.HandleCommand(bus, func(ctx context.Context, o order) error {
			j.add("command " + o.Name)
			if err := bus.Handle(ctx, note{Name: "raised by " + o.Name}); err != nil {
				return err
			}
			if o.Name == "bad" {
				return errBoom
			}
			return nil
		})
		service.Subscribe(bus, func(_ context.Context, n note) error { j.add("event " + n.Name); return nil })
		err := bus.Handle(ctx, order{Name: "good"}, order{Name: "bad"}, order{Name: "never"})
		require.ErrorIs(t, err, errBoom, "policy %v", policy)
		// The queue was good, bad, never, then the events they raised: nothing after bad runs.
		assert.Equal(t, []string{"command good", "command bad"}, j.get(),
			"policy %v: the queue after a failed command runs no further", policy)
	}
}

func TestCollectPolicyStillRunsEveryEventHandlerAroundCommands(t *testing.T) {
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var j journal
	service.HandleCommand(bus, func(context.Context, order) error { j.add("command"); return nil })
	service.Subscribe(bus, func(context.Context, note) error { j.add("failing"); return errBoom })
	service.Subscribe(bus, func(context.Context, note) error { j.add("second"); return nil })
	err := bus.Handle(ctx, note{}, order{})
	require.ErrorIs(t, err, errBoom)
	assert.Equal(t, []string{"failing", "second", "command"}, j.get())
}

func TestCommandWithoutHandlerStopsTheCall(t *testing.T) {
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var j journal
	service.Subscribe(bus, func(context.Context, note) error { j.add("note"); return nil })
	err := bus.Handle(ctx, order{Meta: domain.Meta{ID: "c1"}}, note{})
	require.ErrorIs(t, err, service.ErrNoHandler)
	assert.Contains(t, err.Error(), "c1")
	assert.Empty(t, j.get())
}

func TestHandleRejectsWhatIsNeitherCommandNorEvent(t *testing.T) {
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var j journal
	service.Subscribe(bus, func(context.Context, note) error { j.add("note"); return nil })
	err := bus.Handle(ctx, notAMessage{}, note{})
	require.ErrorIs(t, err, service.ErrNotMessage)
	assert.Contains(t, err.Error(), "notAMessage")
	assert.Empty(t, j.get())
}

func TestPanickingCommandStopsTheCall(t *testing.T) {
	bus := service.NewBus(service.WithErrorPolicy(service.Collect))
	var j journal
	service.HandleCommand(bus, func(context.Context, order) error { panic("kaboom") })
	service.Subscribe(bus, func(context.Context, note) error { j.add("note"); return nil })
	err := bus.Handle(ctx, order{}, note{})
	require.ErrorIs(t, err, service.ErrHandlerPanic)
	assert.Empty(t, j.get())
}

func TestThreeLevelChainIsHandledFIFO(t *testing.T) {
	// command A raises events e1 and e2; e1's handler sends command B; B raises e3.
	// FIFO: A, e1, e2, B, e3. A nested bus would give A, e1, B, e3, e2.
	bus := service.NewBus()
	var j journal
	service.HandleCommand(bus, func(ctx context.Context, o order) error {
		j.add("command " + o.Name)
		if o.Name == "A" {
			return bus.Handle(ctx, note{Name: "e1"}, note{Name: "e2"})
		}
		return bus.Handle(ctx, note{Name: "e3"})
	})
	service.Subscribe(bus, func(ctx context.Context, n note) error {
		j.add("event " + n.Name)
		if n.Name == "e1" {
			return bus.Handle(ctx, order{Name: "B"})
		}
		return nil
	})
	require.NoError(t, bus.Handle(ctx, order{Name: "A"}))
	assert.Equal(t, []string{"command A", "event e1", "event e2", "command B", "event e3"}, j.get())
}
