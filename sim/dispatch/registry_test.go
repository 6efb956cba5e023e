package dispatch_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
)

func TestNamesHoldTheFourStrategiesSorted(t *testing.T) {
	names := dispatch.Names()
	assert.Subset(t, names, []string{dispatch.Sync, dispatch.SyncRetry, dispatch.Async, dispatch.Outbox})
	assert.True(t, slices.IsSorted(names), "%v", names)
	names[0] = "changed"
	assert.NotContains(t, dispatch.Names(), "changed", "the slice is the caller's")
}

func TestNewMakesAFreshStrategyEachTime(t *testing.T) {
	for _, name := range []string{dispatch.Sync, dispatch.SyncRetry, dispatch.Async, dispatch.Outbox} {
		a, err := dispatch.New(name, dispatch.Options{Handlers: 1, Queue: 1, Relays: 1})
		require.NoError(t, err, name)
		b, err := dispatch.New(name, dispatch.Options{Handlers: 1, Queue: 1, Relays: 1})
		require.NoError(t, err, name)
		assert.NotSame(t, a, b, "%s: one strategy per run", name)
	}
	_, err := dispatch.New("exactly-once", dispatch.Options{})
	require.ErrorIs(t, err, dispatch.ErrUnknown)
	assert.ErrorContains(t, err, `"exactly-once" (want one of async, `)
}

// nothing is a strategy that delivers nothing, for the registry's tests.
type nothing struct{}

func (nothing) Promise() dispatch.Promise                      { return dispatch.Promise{} }
func (nothing) Durable() bool                                  { return false }
func (nothing) MailerOptions() []fakes.MailerOption            { return nil }
func (nothing) Middleware() []service.Middleware               { return nil }
func (nothing) Start(context.Context, dispatch.Host) error     { return nil }
func (nothing) Dispatch(context.Context, []domain.Event) error { return nil }
func (nothing) Stop()                                          {}
func (nothing) Stats() dispatch.Stats                          { return dispatch.Stats{} }

func TestRegisterRefusesBadNamesAndTakenOnes(t *testing.T) {
	build := func(dispatch.Options) dispatch.Strategy { return nothing{} }
	before := dispatch.Names()
	for _, tc := range []struct {
		name, strategy string
		build          func(dispatch.Options) dispatch.Strategy
		want           error
	}{
		{"empty", "", build, dispatch.ErrName},
		{"a comma, which -compare splits on", "a,b", build, dispatch.ErrName},
		{"upper case", "Sync", build, dispatch.ErrName},
		{"a space", "sync twice", build, dispatch.ErrName},
		{"no function", "nothing", nil, dispatch.ErrName},
		{"a built-in's name", dispatch.Outbox, build, dispatch.ErrRegistered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := dispatch.Register(tc.strategy, tc.build)
			require.ErrorIs(t, err, tc.want)
			assert.Equal(t, before, dispatch.Names(), "nothing changed")
		})
	}
	s, err := dispatch.New(dispatch.Outbox, dispatch.Options{Relays: 1})
	require.NoError(t, err)
	assert.True(t, s.Durable(), "the outbox is still the outbox")
}

// registered numbers the names TestRegisterMakesTheStrategyKnown registers: the registry is the
// process's, so each run of the test (-count, -cpu 1,2) needs a name of its own.
var registered atomic.Int64

func TestRegisterMakesTheStrategyKnown(t *testing.T) {
	name := fmt.Sprintf("nothing-%d", registered.Add(1))
	var made []dispatch.Options
	require.NoError(t, dispatch.Register(name, func(o dispatch.Options) dispatch.Strategy {
		made = append(made, o)
		return nothing{}
	}))
	assert.Contains(t, dispatch.Names(), name)
	s, err := dispatch.New(name, dispatch.Options{Seed: 7})
	require.NoError(t, err)
	assert.Equal(t, nothing{}, s)
	assert.Equal(t, []dispatch.Options{{Seed: 7}}, made, "made once, with the run's options")
	assert.ErrorIs(t, dispatch.Register(name, func(dispatch.Options) dispatch.Strategy { return nothing{} }), dispatch.ErrRegistered)
}

// Each strategy's promise and what it asks of the mailer and the bus follow its options: what
// sim.Check holds a run to, and what a real mailer must do alike (sim.MailerSpec).
func TestEachStrategysPromiseAndMailerFollowItsOptions(t *testing.T) {
	atMostOnce := dispatch.Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true}
	for _, tc := range []struct {
		name, strategy string
		opts           dispatch.Options
		promise        dispatch.Promise
		durable, dedup bool
		middleware     int
	}{
		{"sync", dispatch.Sync, dispatch.Options{}, atMostOnce, false, false, 0},
		{"sync-retry", dispatch.SyncRetry, dispatch.Options{HandlerAttempts: 3}, atMostOnce, false, false, 1},
		{"sync-retry with delivered timeouts", dispatch.SyncRetry, dispatch.Options{HandlerAttempts: 3, TimeoutsDelivered: true},
			dispatch.Promise{Delivered: true, NoDuplicatePublish: true}, false, false, 1},
		{"async", dispatch.Async, dispatch.Options{Handlers: 1, Queue: 1}, atMostOnce, false, false, 0},
		{"async dropping", dispatch.Async, dispatch.Options{Handlers: 1, Queue: 1, Drop: true}, atMostOnce, false, false, 0},
		{"outbox", dispatch.Outbox, dispatch.Options{Relays: 1, Dedup: true}, dispatch.Promise{Delivered: true, NoLoss: true, NoDuplicate: true}, true, true, 0},
		{"outbox without dedup", dispatch.Outbox, dispatch.Options{Relays: 1}, dispatch.Promise{Delivered: true, NoLoss: true}, true, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := dispatch.New(tc.strategy, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.promise, s.Promise())
			assert.Equal(t, tc.durable, s.Durable(), "durable")
			assert.Len(t, s.Middleware(), tc.middleware, "middleware")
			m := fakes.NewMailer(s.MailerOptions()...)
			mail := service.Mail{To: "stock@made.com", Body: "b", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e1-1"}, SKU: "S"}}
			for range 2 {
				require.NoError(t, m.Send(context.Background(), mail))
			}
			assert.Equal(t, tc.dedup, len(m.DedupHits()) > 0, "the mailer de-duplicates")
		})
	}
}
