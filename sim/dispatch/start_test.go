package dispatch_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/sim/dispatch"
	"github.com/stockbus/stockbus/sim/faults"
)

// actorsHost is a Host that records the names of the goroutines a strategy starts and delivers
// nothing.
type actorsHost struct {
	store *fakes.Store
	mu    sync.Mutex
	names []string
}

var _ dispatch.Host = (*actorsHost)(nil)

func (h *actorsHost) Actor(ctx context.Context, name string) context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.names = append(h.names, name)
	return ctx
}
func (h *actorsHost) Deliver(context.Context, domain.Event) error  { return nil }
func (h *actorsHost) Discarded(context.Context, domain.Event) bool { return true }
func (h *actorsHost) Abandoned(context.Context, domain.Event)      {}
func (h *actorsHost) Store() dispatch.Store                        { return h.store }
func (h *actorsHost) Crash(context.Context, faults.Point) bool     { return false }
func (h *actorsHost) Alive(context.Context) bool                   { return true }
func (h *actorsHost) Step(_ context.Context, fn func()) bool       { fn(); return true }
func (h *actorsHost) Marked(...string)                             {}

// Each life of a strategy starts the goroutines its options ask for, each under a name of its
// own (the run names later lives apart), and Stop waits for every one of every life.
func TestStartStartsTheGoroutinesTheOptionsAskFor(t *testing.T) {
	for _, tc := range []struct {
		name, strategy string
		opts           dispatch.Options
		want           []string
	}{
		{"sync starts none", dispatch.Sync, dispatch.Options{}, nil},
		{"sync-retry starts none", dispatch.SyncRetry, dispatch.Options{HandlerAttempts: 3}, nil},
		{"async starts its handlers", dispatch.Async, dispatch.Options{Handlers: 3, Queue: 4}, []string{"h0", "h1", "h2", "h0", "h1", "h2"}},
		{"outbox starts its relays", dispatch.Outbox, dispatch.Options{Relays: 2}, []string{"r0", "r1", "r0", "r1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			s, err := dispatch.New(tc.strategy, tc.opts)
			require.NoError(t, err)
			h := &actorsHost{store: fakes.NewStore()}
			first, endFirst := context.WithCancel(context.Background())
			require.NoError(t, s.Start(first, h))
			endFirst() // the first life crashed: its goroutines stop
			require.NoError(t, s.Start(context.Background(), h))
			s.Stop()
			assert.Equal(t, tc.want, h.names)
			assert.Equal(t, 2, s.Stats().Lives, "lives")
		})
	}
}
