package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/stockbus/stockbus/domain"
)

var (
	// ErrNoHandler is wrapped when the bus is handed an event or command type that has no handler.
	ErrNoHandler = errors.New("no handler")
	// ErrNotMessage is wrapped when Handle is given nil, a value that is neither a domain.Command
	// nor a domain.Event, or a message whose Identity or WithIdentity panics.
	ErrNotMessage = errors.New("neither a command nor an event")
	// ErrNilContext is wrapped when Handle is given a nil context.Context.
	ErrNilContext = errors.New("nil context")
	// ErrHandlerPanic is wrapped by the error the bus returns for a handler that panicked.
	ErrHandlerPanic = errors.New("handler panicked")
	// ErrMessageLimit is wrapped when one Handle call reaches its message limit, which stops an
	// endless chain of events raising events. The error names the message type the call handled
	// most often and how many times. What the chain's handlers committed before the limit stays
	// committed: the limit stops the chain, it does not undo it.
	ErrMessageLimit = errors.New("message limit reached")
)

// HandlerFunc handles one event. The ctx it gets carries the running Handle call, so messages that
// the handler hands the same bus on the handler's goroutine (directly or by committing a unit of
// work) join that call's queue.
//
// A handler may keep ctx: once the Handle call is over, ctx behaves as the context that call was
// given (its values, deadline and cancellation), and a message handed to the bus with it starts a
// call of its own instead of joining any other call's queue. While the call runs, only the
// handling goroutine may hand the bus messages with ctx: another goroutine doing so races with the
// call for its queue.
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

// Unlimited as a message limit lets one Handle call handle any number of messages, and as a retry
// budget (WithRetries) retries concurrent updates until the context is done.
const Unlimited = -1

// BusOption configures a Bus.
type BusOption func(*Bus)

// WithErrorPolicy sets the error policy (default Propagate).
func WithErrorPolicy(p ErrorPolicy) BusOption { return func(b *Bus) { b.policy = p } }

// WithMessageLimit sets how many messages one Handle call may handle (default DefaultMessageLimit);
// Unlimited removes the limit. NewBus panics when n is 0 or negative and not Unlimited: a bus that
// fails every call, or a typo that silently means "no limit", is a wiring mistake. Handlers that
// committed work before the limit was reached stay committed.
func WithMessageLimit(n int) BusOption { return func(b *Bus) { b.limit = n } }

// WithTrace makes the bus call trace after it handled each message (its command handler or every
// handler of the event ran), with the message as handled (carrying its ID) and the errors its
// handlers returned, joined. It runs on the handling goroutine and must be safe for concurrent
// use. ctx is the context the handlers got: trace may keep it, as a handler may (see HandlerFunc).
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
	ids    atomic.Uint64 // numbers messages and events that carry no ID (see nextID)
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

// NewBus returns a bus with no handlers. It panics on an invalid option, naming it, as
// HandleCommand panics on a second handler: see WithMessageLimit.
func NewBus(opts ...BusOption) *Bus {
	b := &Bus{limit: DefaultMessageLimit}
	for _, o := range opts {
		o(b)
	}
	if b.limit == 0 || (b.limit < 0 && b.limit != Unlimited) {
		panic(fmt.Sprintf("service: NewBus: WithMessageLimit(%d): the limit must be positive or service.Unlimited", b.limit))
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
// first out, before it returns. When ctx belongs to a running Handle call of this bus (a handler
// publishing or sending more), the messages join that call's queue and Handle returns nil at once.
//
// A message without an ID is given one before it is handled, from the same source as the unit of
// work's events (WithIDs on ctx, or the bus's counter); its causation ID is the ID of the message
// being handled on ctx, if any. So a command sent straight to the bus has an ID, and the events
// its handler's unit of work records point at it.
//
// A nil ctx is an error wrapping ErrNilContext. A nil message, or a value that is neither a
// command nor an event, is an error wrapping ErrNotMessage, and then none of msgs is handled or queued (a handler that joins gets the error).
// A message whose Identity or WithIdentity panics is an error wrapping ErrNotMessage that stops
// the call. A type with no handler is an error wrapping ErrNoHandler; a panicking handler becomes
// an error wrapping ErrHandlerPanic. A failing command stops the call and its error is returned;
// after a failing event handler, what happens depends on the ErrorPolicy.
func (b *Bus) Handle(ctx context.Context, msgs ...domain.Message) error {
	if ctx == nil {
		return fmt.Errorf("handle: %w", ErrNilContext)
	}
	for i, m := range msgs {
		switch m.(type) {
		case domain.Event, domain.Command:
		case nil:
			return fmt.Errorf("handle: message %d of %d is nil: %w", i+1, len(msgs), ErrNotMessage)
		default:
			return fmt.Errorf("handle: message %d of %d, a %T, is %w", i+1, len(msgs), m, ErrNotMessage)
		}
	}
	if d := b.running(ctx); d != nil {
		return b.join(d, msgs)
	}
	d := b.pool.Get().(*dispatch)
	d.start(ctx)
	d.queue = append(d.queue[:0], msgs...)
	for !b.drain(d) {
	}
	err := d.result(b.policy)
	d.reset()
	b.pool.Put(d)
	return err
}

// join appends msgs to the running call's queue, giving those without an ID one caused by the
// message being handled. A message whose Identity panics is not queued, and neither are the
// messages after it: the error goes back to the handler that sent them.
func (b *Bus) join(d *dispatch, msgs []domain.Message) (err error) {
	n := len(d.queue)
	defer func() {
		if r := recover(); r != nil {
			bad := msgs[len(d.queue)-n]
			clear(d.queue[n:])
			d.queue = d.queue[:n]
			err = fmt.Errorf("handle: %w: %T panicked: %v", ErrNotMessage, bad, r)
		}
	}()
	cause := d.queue[d.next].Identity().ID
	for _, m := range msgs {
		if m.Identity().ID == "" {
			m = b.stamp(d.ctx.Context, m, cause)
		}
		d.queue = append(d.queue, m)
	}
	return nil
}

// stamp returns m carrying a new ID and the causation ID. A value that is neither a command nor
// an event is returned as it is, for the routing to report.
func (b *Bus) stamp(ctx context.Context, m domain.Message, cause string) domain.Message {
	switch v := m.(type) {
	case domain.Event:
		return v.WithIdentity(domain.Meta{ID: b.nextID(ctx), CausationID: cause})
	case domain.Command:
		return v.WithIdentity(domain.Meta{ID: b.nextID(ctx), CausationID: cause})
	}
	return m
}

// nextID returns the ID source's next ID: the function WithIDs put on ctx, or the bus's counter.
func (b *Bus) nextID(ctx context.Context) string {
	if next := idSource(ctx); next != nil {
		return next()
	}
	var id [24]byte // "ev-" and the longest uint64: the string below is the only allocation
	return string(strconv.AppendUint(append(id[:0], "ev-"...), b.ids.Add(1), 10))
}

// drain handles the queue from where d stands. It reports false when a handler panicked; the
// panic is recorded as an error and the next call goes on after that handler. Recovering here
// rather than around each handler keeps the common path to one deferred call per Handle.
func (b *Bus) drain(d *dispatch) (finished bool) {
	defer func() {
		if r := recover(); r != nil {
			if d.identifying { // m.Identity or WithIdentity panicked: m cannot be handled
				d.identifying = false
				d.fail(b.policy, fmt.Errorf("%w: %T panicked: %v", ErrNotMessage, d.queue[d.next], r))
				d.stop = true
			} else {
				_, command := d.queue[d.next].(domain.Command)
				d.fail(b.policy, &PanicError{Value: r, Stack: debug.Stack()})
				d.stop = d.stop || command
				d.handler++
			}
			if d.stop && b.trace != nil {
				b.traceDone(d) // the loop will not reach this message's end
			}
		}
	}()
	routes := b.routes.Load()
	for ; d.next < len(d.queue) && !d.stop; d.next, d.handler = d.next+1, 0 {
		if d.next == b.limit {
			d.fail(b.policy, d.limitError())
			d.stop = true
			break
		}
		if d.handler == 0 {
			d.errsBefore = len(d.errs)
			d.identifying = true
			if d.queue[d.next].Identity().ID == "" { // sent to this call, not joined: a root here
				d.queue[d.next] = b.stamp(d.ctx.Context, d.queue[d.next], handling(d.ctx.Context).ID)
			}
			d.identifying = false
		}
		m := d.queue[d.next]
		r := routes.lookup(reflect.TypeOf(m))
		switch {
		case r == nil:
			d.failUnrouted(b.policy, m)
		case r.command != nil:
			if err := r.command(d.ctx, m.(domain.Command)); err != nil {
				d.fail(b.policy, err)
				d.stop = true
			}
		default:
			for ; d.handler < len(r.handlers) && !d.stop; d.handler++ {
				if err := r.handlers[d.handler](d.ctx, m); err != nil {
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
	b.trace(d.ctx, d.queue[d.next], errors.Join(d.errs[d.errsBefore:]...))
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

// dispatch is the state of one Handle call. It is pooled; what its handlers get as ctx is a
// callCtx, which is never reused, so that a handler may keep it.
type dispatch struct {
	bus         *Bus
	ctx         *callCtx // the running call's context
	spare       []callCtx
	queue       []domain.Message
	next        int // index in queue of the message being handled
	handler     int // index of its handler being called
	errs        []error
	errsBefore  int  // len(errs) when the message being handled started
	identifying bool // the message's Identity or WithIdentity is being called
	stop        bool
}

// callCtx is the context the handlers of one Handle call get. While the call runs, it leads to
// the call's dispatch, so that a publication inside a handler finds the queue; when the call is
// over, it leads nowhere and is just its parent context. Handing out a fresh one per call (and not
// the pooled dispatch itself) is what makes a kept ctx safe; they are cut from chunks of
// callCtxChunk, so a call costs a share of an allocation rather than one.
type callCtx struct {
	context.Context                          // the parent: the ctx Handle was given; never changes
	call            atomic.Pointer[dispatch] // nil once the call is over
}

const callCtxChunk = 64

// start makes d a call on parent with a new callCtx.
func (d *dispatch) start(parent context.Context) {
	if len(d.spare) == 0 {
		d.spare = make([]callCtx, callCtxChunk)
	}
	c := &d.spare[0]
	d.spare = d.spare[1:]
	c.Context = parent // c is fresh: no other goroutine has seen it
	c.call.Store(d)
	d.ctx = c
}

// fail records err against the message being handled; under Propagate it stops the call.
func (d *dispatch) fail(policy ErrorPolicy, err error) {
	m := d.queue[d.next]
	d.errs = append(d.errs, fmt.Errorf("handle %T %s: %w", m, idOf(m), err))
	d.stop = d.stop || policy == Propagate
}

// idOf returns m's ID for an error message, even when m's Identity panics (a nil pointer).
func idOf(m domain.Message) (id string) {
	defer func() {
		if recover() != nil {
			id = "(no identity)"
		}
	}()
	return m.Identity().ID
}

// limitError says that the call reached the limit, and which message type it handled most often:
// the type that keeps raising itself. It runs only when the limit is hit.
func (d *dispatch) limitError() error {
	counts := map[reflect.Type]int{}
	var most reflect.Type
	for _, m := range d.queue[:d.next] {
		t := reflect.TypeOf(m)
		counts[t]++
		if most == nil || counts[t] > counts[most] {
			most = t
		}
	}
	return fmt.Errorf("%w: %d messages handled, most often %v (%d times), %d still queued",
		ErrMessageLimit, d.next, most, counts[most], len(d.queue)-d.next)
}

// failUnrouted records a message no handler was registered for. An unhandled command stops the
// call: its sender must learn that it failed. Handle let in only commands and events.
func (d *dispatch) failUnrouted(policy ErrorPolicy, m domain.Message) {
	d.fail(policy, ErrNoHandler)
	if _, command := m.(domain.Command); command {
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

// reset ends the call: its callCtx stops leading here, and the messages and errors are let go.
func (d *dispatch) reset() {
	d.ctx.call.Store(nil)
	clear(d.queue)
	clear(d.errs)
	d.ctx, d.queue, d.errs, d.next, d.handler, d.errsBefore, d.stop = nil, d.queue[:0], d.errs[:0], 0, 0, 0, false
}

type dispatchKey struct{}

// Value returns c itself for dispatchKey, and otherwise the parent's value.
func (c *callCtx) Value(key any) any {
	if key == (dispatchKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// running returns the running Handle call of b that ctx belongs to, if any.
func (b *Bus) running(ctx context.Context) *dispatch {
	for v := ctx.Value(dispatchKey{}); v != nil; {
		c := v.(*callCtx)
		if d := c.call.Load(); d != nil && d.bus == b {
			return d
		}
		v = c.Context.Value(dispatchKey{})
	}
	return nil
}

// handling returns the message being handled on ctx by any running bus call, or the zero Meta.
func handling(ctx context.Context) domain.Meta {
	for v := ctx.Value(dispatchKey{}); v != nil; {
		c := v.(*callCtx)
		if d := c.call.Load(); d != nil && d.next < len(d.queue) {
			return d.queue[d.next].Identity()
		}
		v = c.Context.Value(dispatchKey{})
	}
	return domain.Meta{}
}
