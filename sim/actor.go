package sim

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// actor is one goroutine of the simulated process, with its own log: no lock on the hot path.
type actor struct {
	name      string
	w         *worker                     // nil unless the actor is a worker
	inc       atomic.Pointer[incarnation] // the life of the process it belongs to
	sends     []sendRec
	took      []time.Duration // of the sends that are sendTimed, in order
	foreign   map[int]string  // sends[i] caused by an event whose ID the simulator did not make
	sendCount int

	// The events its units of work raised: a worker's requests, and (Config.QuantityChanges) the
	// reallocations an async handler or an outbox relay runs. They are "e<stream>-<seq>": a
	// worker's stream is its number, the other actors' count on from Config.Workers.
	stream      int
	eventPrefix string
	ids         idText      // the text of the IDs it stamps
	events      []eventRec  // index = event seq - 1
	lastID      string      // the ID of the last of events: what a commit and a send mostly name
	chain       *chainStats // nil without Config.QuantityChanges
	delivering  bool        // inside Deliver: a nested Deliver joins the running bus call
}

// The logs hold no pointers, so that the garbage collector never scans them however long they
// grow (a million orders log a million events and sends): IDs are kept as their numbers and
// spelled out once, when the run assembles its History.

// eventRec is an EventOp as its worker logs it: event "e<worker>-<index+1>", raised for order
// "o<orderStream>-<orderSeq>". It is packed into 16 bytes, a million of them into 16 MB: the
// quantity of a Deallocated's line, which only reallocation chains raise, is kept beside the log
// (chainStats.qty), and the kind shares a byte with the unknown mark.
type eventRec struct {
	committedAt time.Duration
	orderSeq    int32
	orderStream uint16 // the plan's order streams: sim runs stream 0 alone
	state       EventState
	bits        uint8 // the kind (eventKindMask), and eventUnknown
}

const (
	eventKindMask = 1<<4 - 1
	eventUnknown  = 1 << 7 // the client of its request never learned the outcome
)

func (e *eventRec) kind() EventKind { return EventKind(e.bits & eventKindMask) }
func (e *eventRec) unknown() bool   { return e.bits&eventUnknown != 0 }

func (e *eventRec) setKind(k EventKind) { e.bits = e.bits&^eventKindMask | uint8(k)&eventKindMask }
func (e *eventRec) markUnknown()        { e.bits |= eventUnknown }

// sendRec is a SendOp as its actor logs it, packed into 16 bytes: the cause is event
// "e<stream>-<seq>" (seq 0: see actor.foreign), the stream in the low bits of cause and the send's
// flags above it. A send whose time was taken (sendTimed: a mail, or a publication with a broker
// report) has it in actor.took, in the order of the sends.
type sendRec struct {
	at    time.Duration
	seq   int32
	cause uint32
}

// sendAtDispatchEnd is the at of a send whose time is the end of the worker's dispatch that made
// it, until that dispatch ends (worker.untimedSends).
const sendAtDispatchEnd time.Duration = -1

const (
	sendStreamBits = 24
	sendStreamMask = 1<<sendStreamBits - 1 // streams past it are kept as foreign IDs
)

const (
	sendErr uint32 = 1 << (sendStreamBits + iota)
	sendTimeout
	sendAccepted
	sendPublish
	sendUnknown // timed out, and the mailer cannot say whether the server took it
	sendTimed   // its time is the actor's next took
)

func (s sendRec) stream() int32        { return int32(s.cause & sendStreamMask) }
func (s sendRec) has(flag uint32) bool { return s.cause&flag != 0 }

type actorKey struct{}

func actorOf(ctx context.Context) *actor {
	a, _ := ctx.Value(actorKey{}).(*actor)
	return a
}

// Actor implements Host. The actor belongs to the live process. With reallocation chains
// (Config.QuantityChanges) it has an event ID stream of its own, recorded in the history, and a
// dispatcher for what its reallocations commit (offWorkerDispatch).
func (r *run) Actor(ctx context.Context, name string) context.Context {
	inc := r.life.cur.Load()
	a := &actor{name: name + inc.suffix(), stream: -1}
	a.inc.Store(inc)
	r.mu.Lock()
	r.actors = append(r.actors, a)
	if r.cfg.QuantityChanges > 0 {
		a.setStream(r.streams)
		a.chain = newChainStats()
		r.streams++
	}
	r.mu.Unlock()
	ctx = context.WithValue(ctx, actorKey{}, a)
	if a.chain != nil {
		ctx = service.WithCallDispatcher(service.WithIDs(ctx, a.nextEventID), r.offWorkerDispatch)
	}
	return ctx
}

func (a *actor) setStream(n int) { a.stream, a.eventPrefix = n, "e"+strconv.Itoa(n)+"-" }

// nextEventID stamps events with "e<stream>-<seq>" and records each one as raised, for the order
// a worker is serving; while a Deallocated handler runs (chainMiddleware) the ID is the Allocate
// command's it sends.
func (a *actor) nextEventID() string {
	if a.chain != nil && a.chain.cause != "" {
		return a.commandID()
	}
	rec := eventRec{state: RolledBack}
	if a.w != nil {
		rec.orderStream, rec.orderSeq = uint16(a.w.current.Stream), int32(a.w.current.Seq)
		if a.events == nil {
			a.events = make([]eventRec, 0, a.w.share())
		}
	}
	a.events = append(a.events, rec)
	a.lastID = a.ids.id('e', a.stream, len(a.events))
	return a.lastID
}

// share is the room a worker's logs start with: its share of the plan's orders and a margin, an
// event and a send each. Growing a log of a million records one append at a time would allocate
// it five times over (append grows large slices by a quarter) and copy it as often.
func (w *worker) share() int {
	c := w.run.cfg
	if c.Duration > 0 || c.Orders <= 0 || c.Workers <= 0 {
		return 0
	}
	n := c.Orders / c.Workers
	return n + n/8 + 64
}

func (a *actor) event(id string) *eventRec {
	if i := a.eventIndex(id); i >= 0 {
		return &a.events[i]
	}
	return nil
}

// eventIndex returns the index in the actor's log of its event with the ID, or -1.
func (a *actor) eventIndex(id string) int {
	if a.eventPrefix == "" {
		return -1
	}
	stream, seq, ok := a.parseID(id)
	if !ok || int(stream) != a.stream || int(seq) > len(a.events) {
		return -1
	}
	return int(seq) - 1
}

// parseID is parseEventID, told without parsing when id is the actor's last event's.
func (a *actor) parseID(id string) (stream, seq int32, ok bool) {
	if id == a.lastID && id != "" {
		return int32(a.stream), int32(len(a.events)), true
	}
	return parseEventID(id)
}

// markCommitted records the actor's events as committed at at, unless already (the crash store
// does it inside the commit's step when the process can crash), and the reallocations they end.
func (a *actor) markCommitted(events []domain.Event, at time.Duration) {
	for _, e := range events {
		i := a.eventIndex(e.Identity().ID)
		if i < 0 {
			continue
		}
		if op := &a.events[i]; op.state == RolledBack {
			op.state, op.committedAt = Committed, at
			op.setKind(kindOf(e))
			if a.chain != nil {
				a.attribute(i, e)
				a.reallocated(e)
			}
		}
	}
}
