package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/faults"
)

var _ Host = (*blockingHost)(nil)

// blockingHost is a Host whose deliveries block until release is closed; entered receives one
// value per delivery that started.
type blockingHost struct {
	store   *fakes.Store
	entered chan string
	release chan struct{}
}

func (h *blockingHost) Actor(ctx context.Context, _ string) context.Context { return ctx }
func (h *blockingHost) Deliver(_ context.Context, e domain.Event) error {
	h.entered <- e.Identity().ID
	<-h.release
	return nil
}
func (h *blockingHost) Discarded(context.Context, domain.Event) bool { return true }
func (h *blockingHost) Abandoned(context.Context, domain.Event)      {}
func (h *blockingHost) Store() Store                                 { return h.store }
func (h *blockingHost) Crash(context.Context, faults.Point) bool     { return false }
func (h *blockingHost) Alive(context.Context) bool                   { return true }
func (h *blockingHost) Step(_ context.Context, fn func()) bool       { fn(); return true }
func (h *blockingHost) Marked(...string)                             {}

// The strategy drains by waiting for its relays, not by polling the store in a loop: while every
// pending row waits behind a send that is blocked, Stop looks at the outbox counts a bounded
// number of times (once, and once more for the nudge of the relay's first, empty claim); a
// spinning drain looks thousands of times in the pause below.
func TestOutboxDrainWaitsForTheRelays(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	store := fakes.NewStore()
	h := &blockingHost{store: store, entered: make(chan string, 8), release: make(chan struct{})}
	s := &outboxStrategy{relays: 1}
	require.NoError(t, s.Start(ctx, h))
	var once, stopOnce sync.Once
	unblock := func() { once.Do(func() { close(h.release) }) }
	stop := func() { stopOnce.Do(s.Stop) }
	defer stop()
	defer unblock() // on a failed precondition too, so that no goroutine is left
	// The outbox's commit stores the events; the relay, not the request, delivers them.
	uow := service.NewUnitOfWork(store, service.NewBus(),
		service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	for _, id := range []string{"o1", "o2"} {
		_, err := service.Allocate(ctx, uow, id, "LAMP", 1)
		require.NoError(t, err)
	}
	pending, _ := store.OutboxCounts()
	require.Equal(t, 2, pending, "two Allocated rows in the outbox")
	require.NoError(t, s.Dispatch(ctx, nil))
	first := <-h.entered // the relay holds the oldest row and is blocked sending it

	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // time for a spinning drain to show itself; a waiting one needs none
	rounds := s.drainRounds.Load()
	unblock()
	<-stopped
	assert.LessOrEqual(t, rounds, int64(2), "looks at the counts while the relay was blocked after Stop")
	pending, done := store.OutboxCounts()
	assert.Equal(t, [2]int{0, 2}, [2]int{pending, done}, "the drain marked both rows done")
	assert.Equal(t, []string{first, <-h.entered}, eventIDs(store.Outbox()), "one relay sends in commit order")
}

func eventIDs(rows []outbox.Row) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID()
	}
	return ids
}

type actorName struct{}

// namedHost is a blockingHost whose actors carry their names, and whose deliveries tell which
// actor made them.
type namedHost struct {
	blockingHost
	by chan string
}

func (h *namedHost) Actor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorName{}, name)
}

func (h *namedHost) Deliver(ctx context.Context, e domain.Event) error {
	name, _ := ctx.Value(actorName{}).(string)
	h.by <- name
	return h.blockingHost.Deliver(ctx, e)
}

// Each relay has Options.RelaySends sends in flight at once, each as an actor of its own (an
// actor's log takes no lock): with three, three rows are in delivery together, by r0, r0.1 and
// r0.2, while the fourth waits for a slot; once they are released every row is marked.
func TestOutboxRelaysSendHandlersRowsAtOnceEachAsItsOwnActor(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	store := fakes.NewStore()
	h := &namedHost{blockingHost: blockingHost{store: store, entered: make(chan string, 8), release: make(chan struct{})}, by: make(chan string, 8)}
	s := newOutbox(Options{Relays: 1, RelaySends: 3}).(*outboxStrategy)
	require.NoError(t, s.Start(ctx, h))
	var once, stopOnce sync.Once
	unblock := func() { once.Do(func() { close(h.release) }) }
	stop := func() { stopOnce.Do(s.Stop) }
	defer stop()
	defer unblock()
	uow := service.NewUnitOfWork(store, service.NewBus(),
		service.WithDispatcher(func(context.Context, []domain.Event) error { return nil }))
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	for _, id := range []string{"o1", "o2", "o3", "o4"} {
		_, err := service.Allocate(ctx, uow, id, "LAMP", 1)
		require.NoError(t, err)
	}
	require.NoError(t, s.Dispatch(ctx, nil))
	var actors []string
	for len(actors) < 3 {
		select {
		case name := <-h.by:
			actors = append(actors, name)
		case <-time.After(10 * time.Second): // only a relay with fewer sends in flight gets here
			require.FailNow(t, "deliveries in flight", "%d of 3 (by %v)", len(actors), actors)
		}
	}
	assert.ElementsMatch(t, []string{"r0", "r0.1", "r0.2"}, actors, "the actors of the three sends in flight")
	unblock()
	stop()
	pending, done := store.OutboxCounts()
	assert.Equal(t, [2]int{0, 4}, [2]int{pending, done}, "every row marked")
}
