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
	// ErrNoHandler is wrapped when the bus is handed an event or command type that has no handler.
	ErrNoHandler = errors.New("no handler")
	// ErrNotMessage is wrapped when Handle is given a value that is neither a domain.Command nor
	// a domain.Event.
	ErrNotMessage = errors.New("neither a command nor an event")
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

// CommandFunc handles one command.
type CommandFunc func(ctx context.Context, c domain.Command) error

// Middleware wraps an event handler, for example to retry it or to time it.
type Middleware func(HandlerFunc) HandlerFunc

// ErrorPolicy says what the bus does when a handler fails.
type ErrorPolicy int

const (
	// Propagate stops at the first handler error and returns it; the rest of the queue is dropped.
	// It is the book's chapter 8 behaviour and the default.
	Propagate ErrorPolicy = iota
	// Collect runs every handler of every queued event and returns all errors joined (chapter 10).
	// A failing command still stops the call: its sender must learn that it failed.
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

// WithTrace makes the bus call trace after it handled each message (its command handler or every
// handler of the event ran), with the message and the errors its handlers returned, joined. It
// runs on the handling goroutine and must be safe for concurrent use; ctx is valid only during the call.
func WithTrace(trace func(ctx context.Context, m domain.Message, err error)) BusOption {
	return func(b *Bus) { b.trace = trace }
}

// WithMiddleware wraps every handler subscribed afterwards; the first middleware is the outermost.
func WithMiddleware(mw ...Middleware) BusOption {
	return func(b *Bus) { b.middleware = append(b.middleware, mw...) }
}

// Bus is a synchronous message bus for commands and events. Handle calls a command's one handler,
// or each of an event's handlers one at a time in subscription order, on the caller's goroutine.
// A Bus is safe for concurrent use; each Handle call has its own queue. Registering handlers
// while Handle runs is safe; a running call may not see them.
type Bus struct {
	policy     ErrorPolicy
	limit      int
	middleware []Middleware
	trace      func(ctx context.Context, m domain.Message, err error)

	mu     sync.Mutex // serializes registration
	routes atomic.Pointer[routes]
	pool   sync.Pool
}

// routes maps message types to handlers. It is never changed once published: registration builds
// a new one. A handful of types is scanned faster than a map is hashed, so small tables use the slice.
type routes struct {
	list  []*route
	index map[reflect.Type]*route // nil while list is short
}

// route holds either the handlers of an event type or the handler of a command type.
type route struct {
	t        reflect.Type
	handlers []messageFunc
	command  CommandFunc
}

// messageFunc is how the bus calls a handler: with the message as it was queued, so the common
// path does no interface conversion beyond the handler's own type assertion.
type messageFunc func(ctx context.Context, m domain.Message) error

const maxScannedRoutes = 8

func (r *routes) lookup(t reflect.Type) *route {
	if r.index != nil {
		return r.index[t]
	}
	for _, rt := range r.list {
		if rt.t == t {
			return rt
		}
	}
	return nil
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
	t := reflect.TypeOf(zero)
	call := messageFunc(typed[E](h).handle)
	if len(b.middleware) > 0 {
		hf := HandlerFunc(func(ctx context.Context, e domain.Event) error { return h(ctx, e.(E)) })
		for i := len(b.middleware) - 1; i >= 0; i-- {
			hf = b.middleware[i](hf)
		}
		call = func(ctx context.Context, m domain.Message) error { return hf(ctx, m.(domain.Event)) }
	}
	b.register(t, func(r *route) {
		if r.command != nil {
			panic(fmt.Sprintf("service: Subscribe: %v already has a command handler", t))
		}
		r.handlers = append(slices.Clip(r.handlers), call)
	})
}

// HandleCommand makes h the handler of commands of type C. A command has exactly one handler:
// registering a second one panics, as registering a pattern twice does in net/http.
func HandleCommand[C domain.Command](b *Bus, h func(ctx context.Context, c C) error) {
	var zero C
	t := reflect.TypeOf(zero)
	b.register(t, func(r *route) {
		if r.command != nil || len(r.handlers) > 0 {
			panic(fmt.Sprintf("service: HandleCommand: %v already has a handler", t))
		}
		r.command = func(ctx context.Context, c domain.Command) error { return h(ctx, c.(C)) }
	})
}

type typed[E domain.Event] func(ctx context.Context, e E) error

func (h typed[E]) handle(ctx context.Context, m domain.Message) error {
	return h(ctx, m.(E)) // routed by type, so m is an E
}

// register publishes a copy of the routes in which change has been applied to t's route.
func (b *Bus) register(t reflect.Type, change func(*route)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.routes.Load()
	next := &routes{list: make([]*route, 0, len(old.list)+1)}
	var target *route
	for _, r := range old.list {
		c := *r
		if c.t == t {
			target = &c
		}
		next.list = append(next.list, &c)
	}
	if target == nil {
		target = &route{t: t}
		next.list = append(next.list, target)
	}
	change(target)
	if len(next.list) > maxScannedRoutes {
		next.index = make(map[reflect.Type]*route, len(next.list))
		for _, r := range next.list {
			next.index[r.t] = r
		}
	}
	b.routes.Store(next)
}

// Handle handles the messages and every message recorded or sent while handling them, first in
// first out, before it returns. When ctx already belongs to a Handle call of this bus (a handler
// publishing or sending more), the messages join that call's queue and Handle returns nil at once.
//
// A type with no handler is an error wrapping ErrNoHandler; a panicking handler becomes an error
// wrapping ErrHandlerPanic. A failing command stops the call and its error is returned; after a
// failing event handler, what happens depends on the ErrorPolicy. A value that is neither a
// command nor an event is an error wrapping ErrNotMessage and stops the call.
func (b *Bus) Handle(ctx context.Context, msgs ...domain.Message) error {
	if d := b.running(ctx); d != nil {
		d.queue = append(d.queue, msgs...)
		return nil
	}
	d := b.pool.Get().(*dispatch)
	d.Context = ctx
	d.queue = append(d.queue[:0], msgs...)
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
			_, command := d.queue[d.next].(domain.Command)
			d.fail(b.policy, &PanicError{Value: r, Stack: debug.Stack()})
			d.stop = d.stop || command
			d.handler++
			if d.stop && b.trace != nil {
				b.traceDone(d) // the loop will not reach this message's end
			}
		}
	}()
	routes := b.routes.Load()
	for ; d.next < len(d.queue) && !d.stop; d.next, d.handler = d.next+1, 0 {
		if d.next == b.limit {
			d.fail(b.policy, fmt.Errorf("%w: %d messages handled, %d still queued", ErrMessageLimit, d.next, len(d.queue)-d.next))
			d.stop = true
			break
		}
		m := d.queue[d.next]
		if d.handler == 0 && b.trace != nil {
			d.errsBefore = len(d.errs)
		}
		r := routes.lookup(reflect.TypeOf(m))
		switch {
		case r == nil:
			d.failUnrouted(b.policy, m)
		case r.command != nil:
			if err := r.command(d, m.(domain.Command)); err != nil {
				d.fail(b.policy, err)
				d.stop = true
			}
		default:
			for ; d.handler < len(r.handlers) && !d.stop; d.handler++ {
				if err := r.handlers[d.handler](d, m); err != nil {
					d.fail(b.policy, err)
				}
			}
		}
		if b.trace != nil {
			b.traceDone(d)
		}
	}
	return true
}

// traceDone reports the message being handled to the trace, with the errors it caused.
func (b *Bus) traceDone(d *dispatch) {
	b.trace(d, d.queue[d.next], errors.Join(d.errs[d.errsBefore:]...))
}

// messages returns the events as messages, for Handle.
func messages(events []domain.Event) []domain.Message {
	msgs := make([]domain.Message, len(events))
	for i, e := range events {
		msgs[i] = e
	}
	return msgs
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
	bus        *Bus
	queue      []domain.Message
	next       int // index in queue of the message being handled
	handler    int // index of its handler being called
	errs       []error
	errsBefore int // len(errs) when the message being handled started
	stop       bool
}

// fail records err against the event being handled; under Propagate it stops the call.
func (d *dispatch) fail(policy ErrorPolicy, err error) {
	e := d.queue[d.next]
	d.errs = append(d.errs, fmt.Errorf("handle %T %s: %w", e, e.Identity().ID, err))
	d.stop = d.stop || policy == Propagate
}

// failUnrouted records a message no handler was registered for. Registration only accepts
// commands and events, so this is where a value that is neither is caught; it stops the call,
// as an unhandled command does.
func (d *dispatch) failUnrouted(policy ErrorPolicy, m domain.Message) {
	switch m.(type) {
	case domain.Command:
		d.fail(policy, ErrNoHandler)
		d.stop = true
	case domain.Event:
		d.fail(policy, ErrNoHandler)
	default:
		d.fail(policy, ErrNotMessage)
		d.stop = true
	}
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
		d.queue[i] = nil // let the messages go
	}
	clear(d.errs)
	d.Context, d.queue, d.errs, d.next, d.handler, d.errsBefore, d.stop = nil, d.queue[:0], d.errs[:0], 0, 0, 0, false
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
