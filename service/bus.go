package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/stockbus/stockbus/domain"
)

var (
	// ErrNoHandler is wrapped when the bus is handed an event type nobody subscribed to.
	ErrNoHandler = errors.New("no handler")
	// ErrHandlerPanic is wrapped by the error the bus returns for a handler that panicked.
	ErrHandlerPanic = errors.New("handler panicked")
	// ErrMessageLimit is wrapped when one Handle call reaches its message limit, which stops an
	// endless chain of events raising events.
	ErrMessageLimit = errors.New("message limit reached")
)

// HandlerFunc handles one event. The ctx it gets carries the running Handle call, so events that
// the handler publishes on the same bus (directly or by committing a unit of work) join that call's
// queue. ctx must not be used after the handler returns: the bus reuses it.
type HandlerFunc func(ctx context.Context, e domain.Event) error

// Middleware wraps a handler, for example to retry it or to time it.
type Middleware func(HandlerFunc) HandlerFunc

// ErrorPolicy says what the bus does when a handler fails.
type ErrorPolicy int

const (
	// Propagate stops at the first handler error and returns it; the rest of the queue is dropped.
	// It is the book's chapter 8 behaviour and the default.
	Propagate ErrorPolicy = iota
	// Collect runs every handler of every queued event and returns all errors joined (chapter 10).
	Collect
)

// DefaultMessageLimit is how many messages one Handle call handles before it gives up with ErrMessageLimit.
const DefaultMessageLimit = 10_000

// BusOption configures a Bus.
type BusOption func(*Bus)

// WithErrorPolicy sets the error policy (default Propagate).
func WithErrorPolicy(p ErrorPolicy) BusOption { return func(b *Bus) { b.policy = p } }

// WithMessageLimit sets how many messages one Handle call may handle (default DefaultMessageLimit).
func WithMessageLimit(n int) BusOption { return func(b *Bus) { b.limit = n } }

// WithMiddleware wraps every handler subscribed afterwards; the first middleware is the outermost.
func WithMiddleware(mw ...Middleware) BusOption {
	return func(b *Bus) { b.middleware = append(b.middleware, mw...) }
}

// Bus is a synchronous message bus: Handle calls each event's handlers one at a time, in
// subscription order, on the caller's goroutine. A Bus is safe for concurrent use; each Handle
// call has its own queue. Subscribing while Handle runs is safe; a running call may not see it.
type Bus struct {
	policy     ErrorPolicy
	limit      int
	middleware []Middleware

	mu     sync.Mutex // serializes Subscribe
	routes atomic.Pointer[routes]
	pool   sync.Pool
}

// routes maps event types to handlers. It is never changed once published: Subscribe builds a
// new one. A handful of types is scanned faster than a map is hashed, so small tables use the slice.
type routes struct {
	list  []route
	index map[reflect.Type][]HandlerFunc // nil while list is short
}

type route struct {
	t        reflect.Type
	handlers []HandlerFunc
}

const maxScannedRoutes = 8

func (r *routes) lookup(t reflect.Type) ([]HandlerFunc, bool) {
	if r.index != nil {
		hs, ok := r.index[t]
		return hs, ok
	}
	for i := range r.list {
		if r.list[i].t == t {
			return r.list[i].handlers, true
		}
	}
	return nil, false
}

// NewBus returns a bus with no handlers.
func NewBus(opts ...BusOption) *Bus {
	b := &Bus{limit: DefaultMessageLimit}
	for _, o := range opts {
		o(b)
	}
	b.routes.Store(&routes{})
	b.pool.New = func() any { return &dispatch{bus: b} }

	return b
}

// Subscribe adds h as a handler of events of type E, after the handlers E already has.
func Subscribe[E domain.Event](b *Bus, h func(ctx context.Context, e E) error) {
	var zero E
	b.subscribe(reflect.TypeOf(zero), typed[E](h).handle)
}

type typed[E domain.Event] func(ctx context.Context, e E) error

func (h typed[E]) handle(ctx context.Context, e domain.Event) error {
	if e, ok := e.(E); ok {
		return h(ctx, e)
	}
	return fmt.Errorf("%w: handler of %T got %T", ErrNoHandler, *new(E), e)
}

func (b *Bus) subscribe(t reflect.Type, h HandlerFunc) {
	for i := len(b.middleware) - 1; i >= 0; i-- {
		h = b.middleware[i](h)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.routes.Load()
	next := &routes{list: slices.Clone(old.list)}
	i := slices.IndexFunc(next.list, func(r route) bool { return r.t == t })
	if i < 0 {
		next.list = append(next.list, route{t: t})
		i = len(next.list) - 1
	}
	next.list[i].handlers = append(slices.Clip(next.list[i].handlers), h)
	if len(next.list) > maxScannedRoutes {
		next.index = make(map[reflect.Type][]HandlerFunc, len(next.list))
		for _, r := range next.list {
			next.index[r.t] = r.handlers
		}
	}
	b.routes.Store(next)
}

// Handle handles the events and every event recorded while handling them, first in first out,
// before it returns. When ctx already belongs to a Handle call of this bus (a handler publishing
// more events), the events join that call's queue and Handle returns nil at once.
//
// An event type with no handler is an error wrapping ErrNoHandler; a panicking handler becomes an
// error wrapping ErrHandlerPanic. What happens after an error depends on the ErrorPolicy.
func (b *Bus) Handle(ctx context.Context, events ...domain.Event) error {
	if d := b.running(ctx); d != nil {
		d.queue = append(d.queue, events...)
		return nil
	}
	d := b.pool.Get().(*dispatch)
	d.Context = ctx
	d.queue = append(d.queue[:0], events...)
	for !b.drain(d) {
	}
	err := d.result(b.policy)
	d.reset()
	b.pool.Put(d)
	return err
}

// drain handles the queue from where d stands. It reports false when a handler panicked; the
// panic is recorded as an error and the next call goes on after that handler. Recovering here
// rather than around each handler keeps the common path to one deferred call per Handle.
func (b *Bus) drain(d *dispatch) (finished bool) {
	defer func() {
		if r := recover(); r != nil {
			d.fail(b.policy, &PanicError{Value: r, Stack: debug.Stack()})
			d.handler++
		}
	}()
	routes := b.routes.Load()
	for ; d.next < len(d.queue) && !d.stop; d.next, d.handler = d.next+1, 0 {
		if d.next == b.limit {
			d.fail(b.policy, fmt.Errorf("%w: %d messages handled, %d still queued", ErrMessageLimit, d.next, len(d.queue)-d.next))
			d.stop = true
			break
		}
		e := d.queue[d.next]
		handlers, ok := routes.lookup(reflect.TypeOf(e))
		if !ok {
			d.fail(b.policy, ErrNoHandler)
			continue
		}
		for ; d.handler < len(handlers) && !d.stop; d.handler++ {
			if err := handlers[d.handler](d, e); err != nil {
				d.fail(b.policy, err)
			}
		}
	}
	return true
}

// PanicError is a handler panic turned into an error. It wraps ErrHandlerPanic.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("%v: %v", ErrHandlerPanic, e.Value) }

// Unwrap returns ErrHandlerPanic.
func (e *PanicError) Unwrap() error { return ErrHandlerPanic }

// dispatch is the state of one Handle call. It is also the context its handlers see, so that a
// publication inside a handler finds the queue without a context.WithValue allocation; it is
// pooled, which is why handlers must not keep ctx.
type dispatch struct {
	context.Context
	bus     *Bus
	queue   []domain.Event
	next    int // index in queue of the event being handled
	handler int // index of its handler being called
	errs    []error
	stop    bool
}

// fail records err against the event being handled; under Propagate it stops the call.
func (d *dispatch) fail(policy ErrorPolicy, err error) {
	e := d.queue[d.next]
	d.errs = append(d.errs, fmt.Errorf("handle %T %s: %w", e, e.Identity().ID, err))
	d.stop = d.stop || policy == Propagate
}

func (d *dispatch) result(policy ErrorPolicy) error {
	switch {
	case len(d.errs) == 0:
		return nil
	case policy == Propagate:
		return d.errs[0]
	}
	return errors.Join(d.errs...)
}

func (d *dispatch) reset() {
	for i := range d.queue {
		d.queue[i] = nil // let the events go
	}
	clear(d.errs)
	d.Context, d.queue, d.errs, d.next, d.handler, d.stop = nil, d.queue[:0], d.errs[:0], 0, 0, false
}

type dispatchKey struct{}

func (d *dispatch) Value(key any) any {
	if key == (dispatchKey{}) {
		return d
	}
	return d.Context.Value(key)
}

// running returns the Handle call of b that ctx belongs to, if any.
func (b *Bus) running(ctx context.Context) *dispatch {
	for v := ctx.Value(dispatchKey{}); v != nil; {
		d := v.(*dispatch)
		if d.bus == b {
			return d
		}
		v = d.Context.Value(dispatchKey{})
	}
	return nil
}

// handling returns the message being handled on ctx by any bus, or the zero Meta.
func handling(ctx context.Context) domain.Meta {
	if d, ok := ctx.Value(dispatchKey{}).(*dispatch); ok && d.next < len(d.queue) {
		return d.queue[d.next].Identity()
	}
	return domain.Meta{}
}
