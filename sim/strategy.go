package sim

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// Strategy is what happens to events after the unit of work commits them. The run calls Start
// before the first order and again after every crash (the restarted process), Dispatch on a
// worker's goroutine inside each request whose commit carried events (its time is the request's
// dispatch time), and Stop once after the last order and the end of the faults.
//
// A strategy never calls the mailer itself: it hands events to Host.Deliver, which runs the bus
// and records every send against the goroutine's own log, so the history stays outside the code
// under test. To add a strategy, write one and register it in strategies.
type Strategy interface {
	// Promise states what the strategy guarantees; Check holds every run to it.
	Promise() Promise
	// Durable reports whether the events a commit carries are stored with it (an outbox), so
	// that a crash cannot lose them. Events of other strategies live in memory until delivered.
	Durable() bool
	// MailerOptions are the options the strategy needs on the mailer (the outbox de-duplicates).
	MailerOptions() []fakes.MailerOption
	// Middleware wraps the bus's handlers (sync-retry retries them).
	Middleware() []service.Middleware
	// Start starts the goroutines of one life of the process. ctx ends when that life ends (a
	// crash) or the run is interrupted: they must then stop at once, leaving what they hold.
	// After a crash Start is called again: the new goroutines start from nothing in memory.
	Start(ctx context.Context, h Host) error
	// Dispatch hands over the events one commit carried. ctx is the worker's; or, for a Durable
	// strategy, that of one of its own goroutines whose reallocation committed (a Deallocated it
	// delivered, Config.QuantityChanges), so it must be safe for concurrent use. A strategy that
	// is not Durable never gets its own goroutines' events: they join the bus call running there.
	Dispatch(ctx context.Context, events []domain.Event) error
	// Stop waits until every event handed over to the live process has been delivered, or until
	// the ctx given to Start ends, and then until every goroutine of every life has returned.
	Stop()
	// Stats reports what the strategy saw; it is called after Stop.
	Stats() StrategyStats
}

// Host is the run, as a strategy sees it.
type Host interface {
	// Actor returns the context of a new goroutine of the strategy, named like "h0": what it
	// sends is recorded in its own log under that name, and crash points know who they hit.
	Actor(ctx context.Context, name string) context.Context
	// Deliver handles the event on the bus (which mails it) on behalf of the actor in ctx.
	Deliver(ctx context.Context, e domain.Event) error
	// Discarded records, on the worker's goroutine (ctx is Dispatch's), that a committed event
	// was dropped on purpose and will never be mailed. It reports false, recording nothing, when
	// the worker's process has died.
	Discarded(ctx context.Context, e domain.Event) bool
	// Abandoned records, on the worker's goroutine, that a committed event was never handed over
	// because the run was stopped first.
	Abandoned(ctx context.Context, e domain.Event)
	// Store is the run's store.
	Store() Store
	// Crash asks the fault plan whether the process crashes where the actor in ctx stands, and
	// if so crashes it and reports true: the actor's goroutine must then return at once.
	Crash(ctx context.Context, p Point) bool
	// Alive reports whether the process the actor in ctx belongs to is still the live one.
	Alive(ctx context.Context) bool
	// Step runs fn, a step the world outside can see (marking an outbox row done), only if the
	// actor's process is alive, atomically with respect to crashes; it reports whether fn ran.
	Step(ctx context.Context, fn func()) bool
	// Marked records, inside a Step, that the outbox rows of these event IDs were marked done:
	// a crash after it no longer counts them as sent and not marked (CrashOp.Unmarked).
	Marked(ids ...string)
}

// StrategyStats is what a strategy saw during a run. Fields that do not apply are zero.
type StrategyStats struct {
	MaxDepth      int           `json:"max_depth"`      // async: deepest the queue was at an enqueue; outbox: most rows pending
	MeanDepth     float64       `json:"mean_depth"`     // async: mean queue depth at an enqueue
	Full          int64         `json:"full"`           // async: enqueues that found the queue full (then blocked or dropped)
	Blocked       time.Duration `json:"blocked_ns"`     // async, block: time requests spent waiting for room
	Pending       int           `json:"pending"`        // events handed over but not delivered when the strategy stopped
	HandlerErrors int64         `json:"handler_errors"` // deliveries that returned an error
	Lives         int           `json:"lives"`          // times the strategy's goroutines were started: 1 + restarts after crashes
}

var strategies = map[string]func(Config) Strategy{
	Sync: func(Config) Strategy { return &syncStrategy{} },
	SyncRetry: func(c Config) Strategy {
		return &syncStrategy{retry: &service.RetryPolicy{Attempts: c.HandlerAttempts, Base: c.HandlerBackoff,
			Max: 64 * c.HandlerBackoff, Seed: uint64(c.Seed)}, timeouts: c.MailTimeout > 0 && c.TimeoutDelivered > 0}
	},
	Async: func(c Config) Strategy {
		return &asyncStrategy{handlers: c.Handlers, queue: c.Queue, drop: c.WhenFull == Drop}
	},
	Outbox: func(c Config) Strategy { return &outboxStrategy{relays: c.Relays, dedup: c.Dedup} },
}

// StrategyNames lists the strategies Config.Strategy accepts, sorted.
func StrategyNames() []string {
	var names []string
	for n := range strategies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func knownStrategy(name string) bool { _, ok := strategies[name]; return ok }

// syncStrategy is the book's: the bus runs inside the request, on the worker's goroutine. With
// retry it is sync-retry.
type syncStrategy struct {
	retry    *service.RetryPolicy
	timeouts bool // sends may time out and still be delivered
	h        Host
	lives    int
}

// Promise, per way out: every event mailed or published when nothing fails; a crash between
// commit and dispatch, or a failed send, loses it. Mail: at most once, except that sync-retry
// retrying a send that timed out but was delivered mails it twice, so sync-retry promises it only
// without such timeouts. Publication: at most once (each handler runs once per delivery, and the
// publisher never times out).
func (s *syncStrategy) Promise() Promise {
	return Promise{Delivered: true, NoDuplicate: s.retry == nil || !s.timeouts, NoDuplicatePublish: true}
}
func (s *syncStrategy) Durable() bool                       { return false }
func (s *syncStrategy) MailerOptions() []fakes.MailerOption { return nil }
func (s *syncStrategy) Middleware() []service.Middleware {
	if s.retry == nil {
		return nil
	}
	return []service.Middleware{service.Retry(*s.retry)}
}
func (s *syncStrategy) Start(_ context.Context, h Host) error {
	if s.lives == 0 { // later lives start while workers read s.h
		s.h = h
	}
	s.lives++
	return nil
}
func (s *syncStrategy) Stop()                {}
func (s *syncStrategy) Stats() StrategyStats { return StrategyStats{Lives: s.lives} }
func (s *syncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		if err := s.h.Deliver(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// asyncStrategy puts events on a bounded channel that handler goroutines drain. Each life of
// the process has its own queue: a crash loses what is in it.
type asyncStrategy struct {
	handlers, queue int
	drop            bool

	h     Host
	cur   atomic.Pointer[asyncLife]
	wg    sync.WaitGroup
	once  sync.Once
	lives int // guarded by the run's crash lock

	depthSum, depthN, maxDepth, full, blocked, errs atomic.Int64
}

type asyncLife struct {
	ctx context.Context
	q   chan domain.Event
}

// Promise, mail and publication alike: at most once, and everything delivered when nothing fails
// (events dropped on purpose by a full queue excepted). A crash loses the queue and what the
// handlers hold.
func (s *asyncStrategy) Promise() Promise {
	return Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true}
}
func (s *asyncStrategy) Durable() bool                       { return false }
func (s *asyncStrategy) MailerOptions() []fakes.MailerOption { return nil }
func (s *asyncStrategy) Middleware() []service.Middleware    { return nil }

func (s *asyncStrategy) Start(ctx context.Context, h Host) error {
	if s.lives == 0 { // later lives start while workers read s.h
		s.h = h
	}
	s.lives++
	l := &asyncLife{ctx: ctx, q: make(chan domain.Event, s.queue)}
	for i := range s.handlers {
		actor := h.Actor(ctx, "h"+strconv.Itoa(i))
		s.wg.Go(func() { s.handle(actor, l) })
	}
	s.cur.Store(l)
	return nil
}

func (s *asyncStrategy) handle(ctx context.Context, l *asyncLife) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-l.q:
			if !ok {
				return
			}
			if err := s.h.Deliver(ctx, e); err != nil {
				s.errs.Add(1)
			}
			if !s.h.Alive(ctx) || s.h.Crash(ctx, AfterDeliver) {
				return // the process died: what is left in l.q is lost with it
			}
		}
	}
}

func (s *asyncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	// The queue first, then the check: a worker that sees itself alive after loading the queue
	// loaded the queue of its own life (a crash replaces the queue after it kills the life).
	l := s.cur.Load()
	if !s.h.Alive(ctx) {
		return errDied
	}
	for _, e := range events {
		depth := int64(len(l.q))
		s.depthSum.Add(depth)
		s.depthN.Add(1)
		for old := s.maxDepth.Load(); depth > old && !s.maxDepth.CompareAndSwap(old, depth); old = s.maxDepth.Load() {
		}
		select {
		case l.q <- e:
			continue
		default:
		}
		s.full.Add(1)
		if s.drop {
			if !s.h.Discarded(ctx, e) {
				return errDied
			}
			continue
		}
		start := time.Now()
		select {
		case l.q <- e:
		case <-l.ctx.Done():
			if !s.h.Alive(ctx) {
				return errDied // the event dies with the process
			}
			s.h.Abandoned(ctx, e)
		}
		s.blocked.Add(int64(time.Since(start)))
	}
	return nil
}

func (s *asyncStrategy) Stop() {
	s.once.Do(func() { close(s.cur.Load().q) })
	s.wg.Wait()
}

func (s *asyncStrategy) Stats() StrategyStats {
	st := StrategyStats{
		MaxDepth: int(s.maxDepth.Load()), Full: s.full.Load(), Blocked: time.Duration(s.blocked.Load()),
		Pending: len(s.cur.Load().q), HandlerErrors: s.errs.Load(), Lives: s.lives,
	}
	if n := s.depthN.Load(); n > 0 {
		st.MeanDepth = float64(s.depthSum.Load()) / float64(n)
	}
	return st
}
