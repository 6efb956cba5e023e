package dispatch

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/faults"
)

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

var _ Strategy = (*asyncStrategy)(nil)

func newAsync(o Options) Strategy {
	return &asyncStrategy{handlers: o.Handlers, queue: o.Queue, drop: o.Drop}
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

// Durable is false: the queue is in memory.
func (s *asyncStrategy) Durable() bool { return false }

// MailerOptions is none: the mailer need not de-duplicate.
func (s *asyncStrategy) MailerOptions() []fakes.MailerOption { return nil }

// Middleware is none: each handler runs once.
func (s *asyncStrategy) Middleware() []service.Middleware { return nil }

// Start starts the handler goroutines of one life, named "h0", "h1", ..., on a new, empty queue.
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
			if !s.h.Alive(ctx) || s.h.Crash(ctx, faults.AfterDeliver) {
				return // the process died: what is left in l.q is lost with it
			}
		}
	}
}

// Dispatch puts the events on the live process's queue; when it is full it blocks until there is
// room or the life ends, or (drop) discards the event.
func (s *asyncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	// The queue first, then the check: a worker that sees itself alive after loading the queue
	// loaded the queue of its own life (a crash replaces the queue after it kills the life).
	l := s.cur.Load()
	if !s.h.Alive(ctx) {
		return ErrDied
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
				return ErrDied
			}
			continue
		}
		start := time.Now()
		select {
		case l.q <- e:
		case <-l.ctx.Done():
			if !s.h.Alive(ctx) {
				return ErrDied // the event dies with the process
			}
			s.h.Abandoned(ctx, e)
		}
		s.blocked.Add(int64(time.Since(start)))
	}
	return nil
}

// Stop closes the last life's queue, so that its handlers return once they drained it, and
// waits for the handlers of every life.
func (s *asyncStrategy) Stop() {
	s.once.Do(func() { close(s.cur.Load().q) })
	s.wg.Wait()
}

// Stats reports the queue's depths, the enqueues that found it full and the time they blocked,
// what the last queue still held, the deliveries that failed and the lives.
func (s *asyncStrategy) Stats() Stats {
	st := Stats{
		MaxDepth: int(s.maxDepth.Load()), Full: s.full.Load(), Blocked: time.Duration(s.blocked.Load()),
		Pending: len(s.cur.Load().q), HandlerErrors: s.errs.Load(), Lives: s.lives,
	}
	if n := s.depthN.Load(); n > 0 {
		st.MeanDepth = float64(s.depthSum.Load()) / float64(n)
	}
	return st
}
