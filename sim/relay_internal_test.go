package sim

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
	"github.com/stockbus/stockbus/service"
)

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
func (h *blockingHost) Crash(context.Context, Point) bool            { return false }
func (h *blockingHost) Alive(context.Context) bool                   { return true }
func (h *blockingHost) Step(_ context.Context, fn func()) bool       { fn(); return true }

// The relay drains by waiting for its senders, not by polling the store in a loop: while every
// pending row is in a blocked sender's hands, Stop's fetcher goes round a bounded number of
// times (a spinning one goes round thousands of times in the pause below).
func TestOutboxRelayWaitsWhileItDrains(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	store := fakes.NewStore()
	h := &blockingHost{store: store, entered: make(chan string, 8), release: make(chan struct{})}
	s := &outboxStrategy{senders: 2}
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
	<-h.entered
	<-h.entered // both senders hold a row and are blocked

	before := s.fetches.Load()
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // time for a spinning fetcher to show itself; a waiting one needs none
	rounds := s.fetches.Load() - before
	unblock()
	<-stopped
	assert.LessOrEqual(t, rounds, int64(4), "fetcher rounds while the senders were blocked after Stop")
	pending, done := store.OutboxCounts()
	assert.Equal(t, [2]int{0, 2}, [2]int{pending, done}, "the drain marked both rows done")
}
