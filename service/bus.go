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
	"time"
	"unsafe"

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

	mu     sync.Mutex // serializes registration, and guards arena
	routes atomic.Pointer[routes]
	pool   sync.Pool     // idle call states: its per-P fast path takes no atomic operation
	ids    atomic.Uint64 // numbers messages and events that carry no ID (see nextID)
	arena  idArena       // IDs handed out outside any call of the bus
}

// routes maps message types to handlers. It is never changed once published: registration builds
// a new one. A handful of types is scanned faster than a map is hashed, so small tables use the slice.
type routes struct {
	list  []*route
	index map[unsafe.Pointer]*route // nil while list is short
}

// route holds either the handlers of an event type or the handler of a command type.
type route struct {
	t        reflect.Type
	key      unsafe.Pointer // t as the runtime keeps it in an interface value (see typeKey)
	handlers []messageFunc
	command  messageFunc
	// inPlace says that every handler sets a message's Meta on its own copy (see typed), so that
	// the bus can stamp a message without making a new one. Middleware and the trace need the
	// stamped message itself.
	inPlace bool
	// direct says that a message's identity can be read at metaAt in its value, without calling
	// its Identity (see identityAt).
	direct bool
	metaAt uintptr
}

// identity returns m's identity. r is m's route, or nil.
func identity(m domain.Message, r *route) domain.Meta {
	if r != nil && r.direct {
		return *(*domain.Meta)(unsafe.Add(dataOf(m), r.metaAt))
	}
	return m.Identity()
}

// dataOf returns the second word of the interface value v: for a struct type larger than a
// pointer, where the value is.
func dataOf(v any) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[1] }

// messageFunc is how the bus calls a handler: with the message as it was queued and, when the
// bus stamped it without making a new value (see route.inPlace), the Meta it gave it.
//
// The Meta goes by pointer, to the call state's copy written before the handlers run: written
// into the handler's copy of the message with wide moves, it can then be copied on into the
// handler's arguments without the stall of reading back narrower stores.
type messageFunc func(ctx context.Context, m domain.Message, stamp *domain.Meta) error

const maxScannedRoutes = 8

func (r *routes) lookup(key unsafe.Pointer) *route {
	if r.index != nil {
		return r.index[key]
	}
	for _, rt := range r.list {
		if rt.key == key {
			return rt
		}
	}
	return nil
}

// typeKey returns the dynamic type of v as the runtime keeps it in an interface value: the first
// word of an empty interface. Two values have the same type exactly when their keys are equal,
// and comparing two pointers is cheaper than comparing two reflect.Types.
func typeKey(v any) unsafe.Pointer { return (*[2]unsafe.Pointer)(unsafe.Pointer(&v))[0] }

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
	return b
}

// Subscribe adds h as a handler of events of type E, after the handlers E already has.
func Subscribe[E domain.Event](b *Bus, h func(ctx context.Context, e E) error) {
	var zero E
	t, key := reflect.TypeOf(zero), typeKey(zero)
	tc := newTyped(h)
	call := messageFunc(tc.handle)
	inPlace := tc.inPlace()
	if len(b.middleware) > 0 {
		hf := HandlerFunc(func(ctx context.Context, e domain.Event) error { return h(ctx, e.(E)) })
		for i := len(b.middleware) - 1; i >= 0; i-- {
			hf = b.middleware[i](hf)
		}
		call = func(ctx context.Context, m domain.Message, _ *domain.Meta) error { return hf(ctx, m.(domain.Event)) }
		inPlace = false
	}
	b.register(t, key, func(r *route) {
		if r.command != nil {
			panic(fmt.Sprintf("service: Subscribe: %v already has a command handler", t))
		}
		r.inPlace = (len(r.handlers) == 0 || r.inPlace) && inPlace
		r.metaAt, r.direct = tc.metaAt, tc.direct
		r.handlers = append(slices.Clip(r.handlers), call)
	})
}

// HandleCommand makes h the handler of commands of type C. A command has exactly one handler:
// registering a second one panics, as registering a pattern twice does in net/http.
func HandleCommand[C domain.Command](b *Bus, h func(ctx context.Context, c C) error) {
	var zero C
	t, key := reflect.TypeOf(zero), typeKey(zero)
	tc := newTyped(h)
	b.register(t, key, func(r *route) {
		if r.command != nil || len(r.handlers) > 0 {
			panic(fmt.Sprintf("service: HandleCommand: %v already has a handler", t))
		}
		r.command, r.inPlace, r.metaAt, r.direct = tc.handle, tc.inPlace(), tc.metaAt, tc.direct
	})
}

// typed calls a handler of messages of type M. When M is a struct that embeds domain.Meta, it
// can stamp a message on the handler's own copy, which lives on the stack: metaAt is the offset
// of that Meta in M, or -1.
type typed[M domain.Message] struct {
	h      func(ctx context.Context, m M) error
	metaAt uintptr
	ok     bool
	direct bool // M's Identity returns the Meta at metaAt (see identityAt)
}

func newTyped[M domain.Message](h func(ctx context.Context, m M) error) *typed[M] {
	t := &typed[M]{h: h}
	t.metaAt, t.ok = metaOffset(reflect.TypeFor[M]())
	t.direct = t.ok && identityAt(reflect.TypeFor[M](), t.metaAt)
	return t
}

// identityAt reports whether the Identity of a value of struct type t returns the Meta at off in
// it, as the promoted method of an embedded Meta does: it sets a probe there and asks. A type
// that declares an Identity of its own, which might not, is asked each time.
func identityAt(t reflect.Type, off uintptr) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	probe := domain.Meta{ID: "\x00probe id", CausationID: "\x00probe cause"}
	v := reflect.New(t)
	*(*domain.Meta)(unsafe.Add(v.UnsafePointer(), off)) = probe
	m, isMessage := v.Elem().Interface().(domain.Message)
	return isMessage && m.Identity() == probe
}

func (t *typed[M]) inPlace() bool { return t.ok }

func (t *typed[M]) handle(ctx context.Context, m domain.Message, stamp *domain.Meta) error {
	v := m.(M) // routed by type, so m is an M
	if stamp != nil {
		// As two 16-byte blocks, the width in which v is copied into h's arguments next: a wide
		// load of narrower stores just made stalls the processor. v is on the stack, so copying
		// pointers as bytes, without write barriers, is safe.
		at := unsafe.Add(unsafe.Pointer(&v), t.metaAt)
		*(*[16]byte)(at) = *(*[16]byte)(unsafe.Pointer(&stamp.ID))
		*(*[16]byte)(unsafe.Add(at, 16)) = *(*[16]byte)(unsafe.Pointer(&stamp.CausationID))
	}
	return t.h(ctx, v)
}

var metaType = reflect.TypeFor[domain.Meta]()

// metaOffset returns where in a value of type t the domain.Meta that gives it its Identity is:
// t is a struct that embeds Meta, directly or through embedded structs (not pointers), and has
// no other field named Meta on the way, so the promoted Identity is Meta's.
func metaOffset(t reflect.Type) (uintptr, bool) {
	if t.Kind() != reflect.Struct {
		return 0, false
	}
	f, ok := t.FieldByName("Meta")
	if !ok || f.Type != metaType || !f.Anonymous {
		return 0, false
	}
	var off uintptr
	for i := range f.Index {
		sf := t.FieldByIndex(f.Index[:i+1])
		if i < len(f.Index)-1 && sf.Type.Kind() != reflect.Struct {
			return 0, false // through a pointer: not part of the value
		}
		off += sf.Offset
	}
	if m, ok := t.MethodByName("Identity"); !ok || m.Type.NumIn() != 1 {
		return 0, false
	}
	return off, true
}

// register publishes a copy of the routes in which change has been applied to t's route.
func (b *Bus) register(t reflect.Type, key unsafe.Pointer, change func(*route)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := b.routes.Load()
	next := &routes{list: make([]*route, 0, len(old.list)+1)}
	var target *route
	for _, r := range old.list {
		c := *r
		if c.key == key {
			target = &c
		}
		next.list = append(next.list, &c)
	}
	if target == nil {
		target = &route{t: t, key: key}
		next.list = append(next.list, target)
	}
	change(target)
	if len(next.list) > maxScannedRoutes {
		next.index = make(map[unsafe.Pointer]*route, len(next.list))
		for _, r := range next.list {
			next.index[r.key] = r
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
// its handler's unit of work records point at it. A handler gets the message carrying them; for
// a struct type that embeds domain.Meta the bus sets them on the handler's copy rather than
// calling WithIdentity, so stamping costs no allocation. The counter's IDs ("ev-" and a number)
// are unique, but calls on different goroutines take them in blocks, so they are not in the
// order the messages were handled.
//
// A nil ctx is an error wrapping ErrNilContext. A nil message, or a value that is neither a
// command nor an event, is an error wrapping ErrNotMessage, and then none of msgs is handled or queued (a handler that joins gets the error).
// A message whose Identity or WithIdentity panics is an error wrapping ErrNotMessage that stops
// the call. A type with no handler is an error wrapping ErrNoHandler; a panicking handler becomes
// an error wrapping ErrHandlerPanic. A failing command stops the call and its error is returned;
// after a failing event handler, what happens depends on the ErrorPolicy.
func (b *Bus) Handle(ctx context.Context, msgs ...domain.Message) error {
	if len(msgs) == 1 && ctx != nil && msgs[0] != nil && b.trace == nil {
		// handle's checks for the most common call, without its loop.
		if r := b.routes.Load().lookup(typeKey(msgs[0])); r != nil {
			outer := callOf(ctx)
			if outer != nil {
				if d := b.runningFrom(outer); d != nil {
					return b.join(d, r, batch{msgs: msgs, n: 1})
				}
			}
			return b.handleOne(ctx, outer, msgs[0], r)
		}
	}
	return b.handle(ctx, batch{msgs: msgs, n: len(msgs)})
}

// handleEvents is Handle for a unit of work's events, without making them a []domain.Message.
func (b *Bus) handleEvents(ctx context.Context, events []domain.Event) error {
	return b.handle(ctx, batch{events: events, n: len(events)})
}

// batch is the messages of one Handle call: msgs, or events when they come from a unit of work.
// (A generic Handle would be simpler, but the compiler then lets the caller's variadic slice
// escape.)
type batch struct {
	msgs   []domain.Message
	events []domain.Event
	n      int
}

func (mb batch) at(i int) domain.Message {
	if mb.msgs != nil {
		return mb.msgs[i]
	}
	if e := mb.events[i]; e != nil {
		return e
	}
	return nil // not a nil Event in a non-nil Message
}

func (b *Bus) handle(ctx context.Context, msgs batch) error {
	if ctx == nil {
		return fmt.Errorf("handle: %w", ErrNilContext)
	}
	routes := b.routes.Load()
	var first *route // the route of msgs' first message, found by the check below
	for i := range msgs.n {
		m := msgs.at(i)
		if m != nil {
			if r := routes.lookup(typeKey(m)); r != nil {
				if i == 0 {
					first = r
				}
				continue // only commands and events are routed: no need to ask the type
			}
		}
		switch m.(type) {
		case domain.Event, domain.Command:
		case nil:
			return fmt.Errorf("handle: message %d of %d is nil: %w", i+1, msgs.n, ErrNotMessage)
		default:
			return fmt.Errorf("handle: message %d of %d, a %T, is %w", i+1, msgs.n, m, ErrNotMessage)
		}
	}
	outer := callOf(ctx)
	if outer != nil {
		if d := b.runningFrom(outer); d != nil {
			return b.join(d, first, msgs)
		}
	}
	if msgs.n == 1 && first != nil && b.trace == nil {
		return b.handleOne(ctx, outer, msgs.at(0), first)
	}
	d := b.getDispatch()
	d.open(ctx)
	if outer != nil {
		d.outer = outer
	}
	if msgs.n > 0 {
		e := d.push()
		e.m, e.r, e.identified, e.stamped = msgs.at(0), first, false, false
		for i := 1; i < msgs.n; i++ {
			e := d.push()
			e.m, e.r, e.identified, e.stamped = msgs.at(i), nil, false, false
		}
	}
	b.drain(d, nil)
	err := d.result(b.policy)
	d.reset()
	b.pool.Put(d)
	return err
}

// drain handles d's queue from d.next on, up to the message limit. lone is handleOne's message,
// handled before the queue's, or nil.
func (b *Bus) drain(d *dispatch, lone domain.Message) {
	for d.next < len(d.queue) && !d.stop {
		if d.handled+d.next == b.limit {
			d.fail(b.policy, d.limitError(lone))
			d.stop = true
			break
		}
		b.step(d)
	}
}

// handleOne is handle for the most common call, one routed message and no trace: the message
// and its identity stay on the stack rather than in the queue. Should a handler hand the bus more
// messages, they join the queue (see join), and the call goes on as handle's would.
func (b *Bus) handleOne(ctx context.Context, outer *callCtx, m domain.Message, r *route) error {
	d := b.getDispatch()
	// Field by field: a composite literal is built in a temporary with 8-byte stores and then
	// copied with 16-byte loads, which stall on them (a failed store forward).
	var o one
	o.m, o.r, o.parent, o.outer = m, r, ctx, outer
	for !b.runOne(d, &o) && !d.stop {
	}
	if len(d.queue) > 0 && !d.stop { // the handlers handed the bus more: handle them after m
		d.handled = 1
		b.drain(d, o.m)
	}
	err := d.result(b.policy)
	d.reset()
	b.pool.Put(d)
	return err
}

// one is the message of a call that handleOne makes.
type one struct {
	m          domain.Message
	r          *route
	parent     context.Context // the ctx handleOne was given
	outer      *callCtx        // the callCtx parent led to, if any: the cause
	meta       domain.Meta
	identified bool // meta holds m's identity, or the one the bus gave it
	stamped    bool // the bus gave m meta, and m itself does not carry it yet
	handler    int  // the handler to call next
}

// runOne handles o's message from its handler o.handler on. It reports false when it recovered
// from a panic; called again, it goes on after the handler that panicked.
func (b *Bus) runOne(d *dispatch, o *one) (done bool) {
	defer func() {
		if p := recover(); p != nil {
			b.recoveredOne(d, o, p)
		}
	}()
	if !o.identified {
		// Before the call's ctx is opened, so that the stores of d.cur are done with before the
		// handler's copy of the message reads them (see messageFunc).
		var meta domain.Meta
		if o.r.direct {
			meta = *(*domain.Meta)(unsafe.Add(dataOf(o.m), o.r.metaAt)) // identity(o.m, o.r), inlined
		} else {
			meta = o.m.Identity()
		}
		if meta.ID == "" {
			meta = domain.Meta{ID: d.nextIDOn(o.parent)}
			if o.outer != nil {
				meta.CausationID = handlingFrom(o.outer).ID
			}
			if o.r.inPlace {
				o.stamped = true
			} else {
				o.m = withIdentity(o.m, meta)
				o.r = b.routes.Load().lookup(typeKey(o.m))
			}
		}
		o.meta, o.identified = meta, true
		d.cur = meta
		d.open(o.parent)
	}
	r := o.r
	var stamp *domain.Meta
	if o.stamped {
		stamp = &d.cur
	}
	switch {
	case r == nil:
		d.failMessage(b.policy, o.m, o.meta.ID, ErrNoHandler)
		_, command := o.m.(domain.Command)
		d.stop = d.stop || command
	case r.command != nil:
		if err := r.command(d.ctx, o.m, stamp); err != nil {
			d.failMessage(b.policy, o.m, o.meta.ID, err)
			d.stop = true
		}
	default:
		for ; o.handler < len(r.handlers) && !d.stop; o.handler++ {
			if err := r.handlers[o.handler](d.ctx, o.m, stamp); err != nil {
				d.failMessage(b.policy, o.m, o.meta.ID, err)
			}
		}
	}
	return true
}

// recoveredOne is recovered for runOne.
func (b *Bus) recoveredOne(d *dispatch, o *one, p any) {
	if !o.identified { // m.Identity, the ID source or WithIdentity panicked: m cannot be handled
		d.failMessage(b.policy, o.m, idOf(o.m), fmt.Errorf("%w: %T panicked: %v", ErrNotMessage, o.m, p))
		d.stop = true
		return
	}
	_, command := o.m.(domain.Command)
	d.failMessage(b.policy, o.m, o.meta.ID, &PanicError{Value: p, Stack: debug.Stack()})
	d.stop = d.stop || command
	o.handler++
}

// callOf returns the callCtx that ctx is or leads to, if any. A handler usually hands the bus
// its ctx as it got it, which the type assertion finds without asking ctx for a value.
func callOf(ctx context.Context) *callCtx {
	if c, ok := ctx.(*callCtx); ok {
		return c
	}
	if sameContext(ctx, background) {
		return nil // the most common root, which holds no values: no need to ask
	}
	c, _ := ctx.Value(dispatchKey{}).(*callCtx)
	return c
}

var background = context.Background()

func (b *Bus) getDispatch() *dispatch {
	if d, ok := b.pool.Get().(*dispatch); ok {
		return d
	}
	return &dispatch{ctxHeader: ctxHeader{call: true}, bus: b}
}

// join appends msgs to the running call's queue, giving those without an ID one caused by the
// message being handled. A message whose Identity panics is not queued, and neither are the
// messages after it: the error goes back to the handler that sent them.
func (b *Bus) join(d *dispatch, first *route, msgs batch) (err error) {
	if msgs.n == 1 && first != nil && first.direct {
		// One message whose identity lies in it: when it has an ID, or gets one from the bus's
		// counter, nothing here can panic, and the recover below is not needed.
		m := msgs.at(0)
		meta := *(*domain.Meta)(unsafe.Add(dataOf(m), first.metaAt))
		if meta.ID != "" || (d.sourced && d.source == nil) {
			stamped := meta.ID == ""
			e := d.push()
			e.m, e.r, e.identified, e.stamped = m, first, true, stamped
			if stamped {
				// Into the entry, not through a local Meta: copying one just written (with
				// 8-byte stores) would stall on its 16-byte loads. The entry is read later.
				e.meta.ID, e.meta.CausationID = d.ids.id(&b.ids), d.cur.ID
			} else {
				e.meta = meta
			}
			return nil
		}
	}
	n := len(d.queue)
	defer func() {
		if r := recover(); r != nil {
			bad := msgs.at(len(d.queue) - n)
			clear(d.queue[n:])
			d.queue = d.queue[:n]
			err = fmt.Errorf("handle: %w: %T panicked: %v", ErrNotMessage, bad, r)
		}
	}()
	for i := range msgs.n {
		m := msgs.at(i)
		var r *route
		if i == 0 {
			r = first
		}
		meta, stamped := identity(m, r), false
		if meta.ID == "" {
			meta, stamped = domain.Meta{ID: d.nextID(), CausationID: d.cur.ID}, true
		}
		e := d.push()
		e.m, e.r, e.meta, e.identified, e.stamped = m, r, meta, true, stamped
	}
	return nil
}

// push adds an entry to the queue and returns it, as the last call left it: the caller sets
// every field it reads. Fields are set one by one, rather than by copying an entry, which would
// take the collector's bulk write barrier.
func (d *dispatch) push() *entry {
	if n := len(d.queue); n < cap(d.queue) {
		d.queue = d.queue[:n+1]
	} else {
		d.queue = append(d.queue, entry{})
	}
	return &d.queue[len(d.queue)-1]
}

// nextID returns the ID source's next ID: the function WithIDs put on ctx, or the bus's counter.
// Outside a call of the bus, the counter's IDs are cut from the bus's arena under its lock.
func (b *Bus) nextID(ctx context.Context) string {
	if outer := callOf(ctx); outer != nil {
		if d := b.runningFrom(outer); d != nil {
			return d.nextID()
		}
	}
	if next := idSource(ctx); next != nil {
		return next()
	}
	n := b.ids.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.arena.id(n)
}

// idArena cuts message IDs ("ev-" and a number) from a shared byte buffer, so that an ID costs a
// share of an allocation instead of one. Bytes are only ever appended, never changed, so the
// strings stay valid; an ID that is kept keeps its chunk (idChunk bytes) alive.
type idArena struct{ buf []byte }

const (
	idChunk = 2048
	idMost  = len("ev-") + 20 // the longest ID: "ev-" and the longest uint64
)

func (a *idArena) id(n uint64) string {
	var b [idMost]byte
	return a.add(strconv.AppendUint(append(b[:0], "ev-"...), n, 10))
}

// add returns a string with id's bytes, cut from the arena.
func (a *idArena) add(id []byte) string {
	if cap(a.buf)-len(a.buf) < len(id) {
		a.buf = make([]byte, 0, idChunk)
	}
	from := len(a.buf)
	a.buf = append(a.buf, id...)
	return unsafe.String(&a.buf[from], len(id))
}

// idBlock is how many numbers of the bus's counter a call state takes at once, so that numbering
// a message costs no atomic operation. IDs stay unique; across goroutines they are not in order.
const idBlock = 256

// idSeq hands out the numbers of a block of the bus's counter as IDs. It keeps the next ID in
// decimal and counts up in place, which is cheaper than formatting each number.
type idSeq struct {
	next, end uint64 // the next number to hand out, and the end of the block
	text      [idMost]byte
	n         int // text[:n] is "ev-" and next in decimal
	arena     idArena
}

func (s *idSeq) id(counter *atomic.Uint64) string {
	if s.next == s.end {
		s.end = counter.Add(idBlock) + 1
		s.next = s.end - idBlock
		s.n = len(strconv.AppendUint(append(s.text[:0], "ev-"...), s.next, 10))
	}
	id := s.arena.add(s.text[:s.n])
	s.next++
	i := s.n - 1
	for ; i >= len("ev-") && s.text[i] == '9'; i-- {
		s.text[i] = '0'
	}
	if i >= len("ev-") {
		s.text[i]++
	} else if s.n < idMost { // 99..9 became 00..0: one digit more
		s.text[len("ev-")], s.text[s.n] = '1', '0'
		s.n++
	}
	return id
}

// step handles the message at d.next, from its handler d.handler on, and moves d to the next
// message. A panic in a handler is recorded as an error, and the next step goes on after that
// handler; one deferred recover per message keeps the common path cheap.
func (b *Bus) step(d *dispatch) {
	defer func() {
		if r := recover(); r != nil {
			b.recovered(d, r)
		}
	}()
	e := &d.queue[d.next]
	if d.handler == 0 {
		d.errsBefore = len(d.errs)
		d.identifying = true
		if !e.identified { // sent to this call, not joined: a root here
			e.meta, e.identified = identity(e.m, e.r), true
			if e.meta.ID == "" {
				e.meta, e.stamped = domain.Meta{ID: d.nextID(), CausationID: d.rootCause()}, true
			}
		}
		d.cur = e.meta
		if e.r == nil {
			e.r = b.routes.Load().lookup(typeKey(e.m))
		}
		if e.stamped && (e.r == nil || !e.r.inPlace || b.trace != nil) {
			e.m, e.stamped = withIdentity(e.m, e.meta), false
			e.r = b.routes.Load().lookup(typeKey(e.m))
		}
		d.identifying = false
	}
	r, m := e.r, e.m // e may move: handlers append to the queue
	var stamp *domain.Meta
	if e.stamped {
		stamp = &d.cur
	}
	switch {
	case r == nil:
		d.failUnrouted(b.policy, m)
	case r.command != nil:
		if err := r.command(d.ctx, m, stamp); err != nil {
			d.fail(b.policy, err)
			d.stop = true
		}
	default:
		for ; d.handler < len(r.handlers) && !d.stop; d.handler++ {
			if err := r.handlers[d.handler](d.ctx, m, stamp); err != nil {
				d.fail(b.policy, err)
			}
		}
	}
	if b.trace != nil {
		b.traceDone(d)
	}
	d.next, d.handler = d.next+1, 0
}

// recovered records the panic r of the message at d.next: of its Identity or WithIdentity, which
// means it cannot be handled, or of its handler d.handler.
func (b *Bus) recovered(d *dispatch, r any) {
	if d.identifying {
		d.identifying = false
		d.fail(b.policy, fmt.Errorf("%w: %T panicked: %v", ErrNotMessage, d.queue[d.next].m, r))
		d.stop = true
	} else {
		_, command := d.queue[d.next].m.(domain.Command)
		d.fail(b.policy, &PanicError{Value: r, Stack: debug.Stack()})
		d.stop = d.stop || command
		d.handler++
	}
	if d.stop && b.trace != nil {
		b.traceDone(d) // the loop will not reach this message's end
	}
}

// withIdentity returns m carrying meta, a new value. A value that is neither a command nor an
// event is returned as it is, for the routing to report.
func withIdentity(m domain.Message, meta domain.Meta) domain.Message {
	switch v := m.(type) {
	case domain.Event:
		return v.WithIdentity(meta)
	case domain.Command:
		return v.WithIdentity(meta)
	}
	return m
}

// traceDone reports the message being handled to the trace, with the errors it caused.
func (b *Bus) traceDone(d *dispatch) {
	b.trace(d.ctx, d.queue[d.next].m, errors.Join(d.errs[d.errsBefore:]...))
}

// PanicError is a handler panic turned into an error. It wraps ErrHandlerPanic.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("%v: %v", ErrHandlerPanic, e.Value) }

// Unwrap returns ErrHandlerPanic.
func (e *PanicError) Unwrap() error { return ErrHandlerPanic }

// dispatch is the state of one Handle call. It is pooled; what its handlers get
// as ctx is a callCtx, which is never reused, so that a handler may keep it.
type dispatch struct {
	ctxHeader   // call: true
	bus         *Bus
	box         atomic.Pointer[parentBox] // the parent of the running call, or of the last one
	ctx         *callCtx                  // the running call's context
	outer       *callCtx                  // the callCtx ctx led to when the call started, if any: the causes
	spare       []callCtx                 // fresh callCtxs: spare[spareAt:] are unused
	spareAt     int
	opened      bool // ctx is this call's
	queue       []entry
	handled     int         // messages handled before queue[0]: 1 when handleOne's message was
	next        int         // index in queue of the message being handled
	handler     int         // index of its handler being called
	cur         domain.Meta // the identity of the message being handled
	errs        []error
	errsBefore  int  // len(errs) when the message being handled started
	identifying bool // the message's Identity or WithIdentity is being called
	stop        bool

	// The ID source and the root cause, looked up on the first message that needs them.
	sourced    bool
	source     func() string
	causeKnown bool
	cause      string
	ids        idSeq // the bus's counter's numbers, when there is no source
}

// entry is a queued message with its identity, kept beside it so that a message the bus stamps
// need not be copied into a new value (see route.inPlace).
type entry struct {
	m          domain.Message
	r          *route      // m's route, once known
	meta       domain.Meta // valid once identified
	identified bool        // meta holds m's identity, or the one the bus gave it
	stamped    bool        // the bus gave m meta, and m itself does not carry it yet
}

// callCtx is the context the handlers of one Handle call get. While the call runs, it leads to
// the call's dispatch, so that a publication inside a handler finds the queue; when the call is
// over, it leads to its parent's box and is just its parent context. Handing out a fresh one per
// call (and not the reused dispatch itself) is what makes a kept ctx safe. It is one word, so
// that a call allocates little (the collector's work grows with the bytes allocated): they are
// cut from chunks of callCtxChunk, and the parent is boxed once for the calls that share it.
type callCtx struct {
	// at is the *dispatch while the call runs and the *parentBox of its parent once it is over;
	// both begin with a ctxHeader that tells which. It changes once, atomically, at the call's
	// end (its first write, before any other goroutine sees c, is plain).
	at unsafe.Pointer
}

// ctxHeader begins what a callCtx leads to. It never changes.
type ctxHeader struct{ call bool }

// parentBox holds the context a Handle call was given.
type parentBox struct {
	ctxHeader // call: false
	context.Context
}

// running returns the call c belongs to, or nil once it is over.
func (c *callCtx) running() *dispatch {
	if p := atomic.LoadPointer(&c.at); (*ctxHeader)(p).call {
		return (*dispatch)(p)
	}
	return nil
}

// parent returns the ctx c's call was given. While the call runs, that is in its dispatch, which
// the next call reuses: what was read there counts only if c still leads to it afterwards.
func (c *callCtx) parent() context.Context {
	for {
		p := atomic.LoadPointer(&c.at)
		if !(*ctxHeader)(p).call {
			return (*parentBox)(p).Context
		}
		box := (*dispatch)(p).box.Load()
		if atomic.LoadPointer(&c.at) == p {
			return box.Context
		}
	}
}

// Deadline returns the parent's deadline.
func (c *callCtx) Deadline() (time.Time, bool) { return c.parent().Deadline() }

// Done returns the parent's Done channel.
func (c *callCtx) Done() <-chan struct{} { return c.parent().Done() }

// Err returns the parent's error.
func (c *callCtx) Err() error { return c.parent().Err() }

const callCtxChunk = 512

// open makes d a call on parent with a new callCtx.
func (d *dispatch) open(parent context.Context) {
	if d.spareAt == len(d.spare) {
		d.spare, d.spareAt = make([]callCtx, callCtxChunk), 0
	}
	if box := d.box.Load(); box == nil || !sameContext(box.Context, parent) {
		d.box.Store(&parentBox{Context: parent})
	}
	c := &d.spare[d.spareAt]
	d.spareAt++
	c.at = unsafe.Pointer(d) // c is fresh: no other goroutine has seen it, so a plain write does
	d.ctx, d.opened = c, true
}

// sameContext reports whether a and b are the same context value: both words of the interface
// values are equal. (Comparing them with == could panic on a context type that is not comparable.)
func sameContext(a, b context.Context) bool {
	x, y := (*[2]unsafe.Pointer)(unsafe.Pointer(&a)), (*[2]unsafe.Pointer)(unsafe.Pointer(&b))
	return x[0] == y[0] && x[1] == y[1] // word by word: comparing the arrays calls memequal
}

// nextID returns the next ID of the call's ID source: the function WithIDs put on its ctx, or
// the bus's counter, cut from d's arena.
func (d *dispatch) nextID() string { return d.nextIDOn(d.box.Load().Context) }

// nextIDOn is nextID for a call on parent.
func (d *dispatch) nextIDOn(parent context.Context) string {
	if !d.sourced {
		if !sameContext(parent, background) {
			if source := idSource(parent); source != nil {
				d.source = source
			}
		}
		d.sourced = true
	}
	if d.source != nil {
		return d.source()
	}
	return d.ids.id(&d.bus.ids)
}

// rootCause returns the ID of the message being handled, on the call's ctx, by another call.
func (d *dispatch) rootCause() string {
	if !d.causeKnown {
		d.cause, d.causeKnown = handlingFrom(d.outer).ID, true
	}
	return d.cause
}

// fail records err against the message being handled; under Propagate it stops the call.
func (d *dispatch) fail(policy ErrorPolicy, err error) {
	e := &d.queue[d.next]
	id := e.meta.ID
	if !e.identified {
		id = idOf(e.m)
	}
	d.failMessage(policy, e.m, id, err)
}

// failMessage records err against m, whose ID is id; under Propagate it stops the call.
func (d *dispatch) failMessage(policy ErrorPolicy, m domain.Message, id string, err error) {
	d.errs = append(d.errs, fmt.Errorf("handle %T %s: %w", m, id, err))
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
// lone is handleOne's message, handled before the queue's, or nil.
func (d *dispatch) limitError(lone domain.Message) error {
	counts := map[reflect.Type]int{}
	var most reflect.Type
	count := func(m domain.Message) {
		t := reflect.TypeOf(m)
		counts[t]++
		if most == nil || counts[t] > counts[most] {
			most = t
		}
	}
	if lone != nil {
		count(lone)
	}
	for _, e := range d.queue[:d.next] {
		count(e.m)
	}
	return fmt.Errorf("%w: %d messages handled, most often %v (%d times), %d still queued",
		ErrMessageLimit, d.handled+d.next, most, counts[most], len(d.queue)-d.next)
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
// Fields that are already clear are not written again: while the garbage collector marks, every
// pointer written costs a write barrier.
func (d *dispatch) reset() {
	if d.opened { // not when handleOne's message could not be identified
		atomic.StorePointer(&d.ctx.at, unsafe.Pointer(d.box.Load()))
		d.opened = false
	}
	if len(d.queue) > 0 {
		if len(d.queue) > queueKept {
			clear(d.queue)
		}
		d.queue = d.queue[:0]
	}
	if len(d.errs) > 0 {
		clear(d.errs)
		d.errs = d.errs[:0]
	}
	if d.outer != nil {
		d.outer = nil
	}
	if d.source != nil || d.cause != "" {
		d.source, d.cause = nil, ""
	}
	d.handled, d.next, d.handler, d.errsBefore, d.stop, d.sourced, d.causeKnown = 0, 0, 0, 0, false, false, false
	// ctx and cur are left as they are: they are set before a call's handlers run, and are
	// read only while it runs.
}

// queueKept is how many entries a call state may keep from its last call, rather than clear
// them, which takes the collector's bulk write barrier: the next call overwrites them, and a
// pooled state holds at most that many messages meanwhile.
const queueKept = 8

type dispatchKey struct{}

// Value returns c itself for dispatchKey, and otherwise the parent's value.
func (c *callCtx) Value(key any) any {
	if key == (dispatchKey{}) {
		return c
	}
	return c.parent().Value(key)
}

// runningFrom returns the running Handle call of b that c, or a callCtx it leads to, belongs to.
func (b *Bus) runningFrom(c *callCtx) *dispatch {
	for c != nil {
		if d := c.running(); d != nil && d.bus == b {
			return d
		}
		c, _ = c.parent().Value(dispatchKey{}).(*callCtx)
	}
	return nil
}

// handling returns the message being handled on ctx by any running bus call, or the zero Meta.
func handling(ctx context.Context) domain.Meta {
	return handlingFrom(callOf(ctx))
}

// handlingFrom is handling for the callCtx a ctx leads to.
func handlingFrom(c *callCtx) domain.Meta {
	for c != nil {
		if d := c.running(); d != nil {
			return d.cur
		}
		c, _ = c.parent().Value(dispatchKey{}).(*callCtx)
	}
	return domain.Meta{}
}
