package dispatch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// The names of the strategies this package registers.
const (
	// Sync is the book's design: handlers run inside the request, after commit.
	Sync = "sync"
	// SyncRetry is Sync with the book's handler retries: a failing handler runs again up to
	// Options.HandlerAttempts times in all, after a jittered exponential backoff (service.Retry).
	SyncRetry = "sync-retry"
	// Async commits, then puts events on a bounded in-memory queue drained by Options.Handlers
	// goroutines.
	Async = "async"
	// Outbox stores events in the same commit as the product; relays deliver them and mark them
	// done, and the mailer de-duplicates by event id.
	Outbox = "outbox"
)

// Options are the settings of a run a strategy may read, taken from sim.Config: a strategy gets
// them when it is made, one strategy per run. The zero value suits sync and sync-retry (which then
// tries each handler once); async needs Handlers (with none, a request blocks until its life
// ends) and outbox needs Relays (with none, nothing is delivered).
type Options struct {
	// Seed seeds the strategy's randomness (sync-retry's backoff jitter); never 0 in a run.
	Seed int64
	// HandlerAttempts and HandlerBackoff are sync-retry's handler retries: attempts in all (the
	// first included) and the first backoff, which doubles up to 64 times it.
	HandlerAttempts int
	HandlerBackoff  time.Duration
	// TimeoutsDelivered says the mailer may time a send out and still deliver it, so that a
	// retried send may mail twice.
	TimeoutsDelivered bool
	// Handlers and Queue are async's handler goroutines and queue capacity; Drop drops an event
	// that finds the queue full instead of blocking the request.
	Handlers, Queue int
	Drop            bool
	// Relays is how many outbox relays share the outbox table (1 to MaxRelays); Dedup makes the
	// mailer de-duplicate by event id.
	Relays int
	Dedup  bool
	// RelaySends is how many sends each outbox relay has in flight (outbox.WithSends); below 1
	// means 1.
	RelaySends int
}

// Errors of the registry.
var (
	// ErrUnknown is returned by New for a name no strategy is registered under.
	ErrUnknown = errors.New("unknown strategy")
	// ErrRegistered is returned by Register for a name already taken.
	ErrRegistered = errors.New("strategy already registered")
	// ErrName is returned by Register for a name that cannot be a flag's value: empty, or with a
	// character other than a lower-case letter, a digit or a dash.
	ErrName = errors.New("bad strategy name")
)

var registry = struct {
	sync.RWMutex
	m map[string]func(Options) Strategy
}{m: map[string]func(Options) Strategy{
	Sync:      newSync,
	SyncRetry: newSyncRetry,
	Async:     newAsync,
	Outbox:    newOutbox,
}}

// Register makes the strategies that build makes available under name: to New and Names, and so
// to sim.Run (Config.Strategy), the command's -strategy and -compare. build is called once per
// run, with the run's Options, and must return a new strategy each time. A name taken already
// gives ErrRegistered, a bad one ErrName, and nothing changes. It is safe for concurrent use.
func Register(name string, build func(Options) Strategy) error {
	if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("%w %q: want lower-case letters, digits and dashes", ErrName, name)
	}
	if build == nil {
		return fmt.Errorf("%w %q: no function to make it", ErrName, name)
	}
	registry.Lock()
	defer registry.Unlock()
	if _, ok := registry.m[name]; ok {
		return fmt.Errorf("%w: %q", ErrRegistered, name)
	}
	registry.m[name] = build
	return nil
}

// New makes a new strategy of the registered name with opts, or returns an error wrapping
// ErrUnknown that lists the names there are.
func New(name string, opts Options) (Strategy, error) {
	registry.RLock()
	build, ok := registry.m[name]
	registry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknown, name, strings.Join(Names(), ", "))
	}
	return build(opts), nil
}

// Names lists the registered strategies' names, sorted. The slice is the caller's.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
