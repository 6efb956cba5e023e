package sim

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// A crash kills the whole simulated process: every worker's request in flight, the async queue
// and its handlers, the outbox relay and its progress, every event still held in memory. What the
// store committed (products and outbox rows) and what the mail server accepted survive. The
// simulator then restarts the process: the strategy's goroutines start again (an empty queue, a
// relay that reads the outbox from its oldest pending row) and the workers, which are also the
// clients, go on with their next order (or send the same one again, see Config.ClientRetry).
//
// Goroutines cannot be killed from outside, so each one belongs to an incarnation (a life of the
// process) and checks, atomically with every step the world outside can see (a commit, a send,
// marking an outbox row done), that its incarnation is still the live one; a goroutine of a dead
// incarnation stops at its next such step, as if it had died with it. The steps hold a shared
// lock and a crash takes it exclusively, so the crash happens at one instant between steps: what
// the process held in memory at that instant (committed events not yet delivered) is recorded
// with the crash, and is exactly what the crash lost.

// errCrashed is what a handler returns when the process died inside it.
var errCrashed = errors.New("simulated crash")

// crashed is the panic value that unwinds a worker's request when its process died under it.
type crashed struct{ at Point }

// incarnation is one life of the simulated process.
type incarnation struct {
	n      int
	dead   chan struct{} // closed when it crashed
	ctx    context.Context
	cancel context.CancelFunc // ends ctx: the strategy's goroutines of this life stop
}

func (i *incarnation) isDead() bool {
	select {
	case <-i.dead:
		return true
	default:
		return false
	}
}

// suffix names the goroutines of later lives apart: "h0" in the first, "h0@2" in the third.
func (i *incarnation) suffix() string {
	if i.n == 0 {
		return ""
	}
	return "@" + strconv.Itoa(i.n)
}

// life is the process's succession of incarnations.
type life struct {
	on  bool         // crash faults are configured: steps check the incarnation
	mu  sync.RWMutex // shared by every step the world can see, exclusive for a crash
	cur atomic.Pointer[incarnation]
	off bool // guarded by mu: the fault phase is over, nothing crashes any more

	liveMu sync.Mutex
	live   map[string]struct{} // committed events held only in memory, not yet delivered
	// unmarked are the outbox rows a relay of the live process sent (the send succeeded) and has
	// not marked done: a crash leaves each of them to be sent again.
	unmarked map[string]struct{}

	crashes []CrashOp // guarded by mu
}

func (r *run) newIncarnation(ctx context.Context, n int) *incarnation {
	c, cancel := context.WithCancel(ctx)
	return &incarnation{n: n, dead: make(chan struct{}), ctx: c, cancel: cancel}
}

// enter starts a step the world can see, on behalf of a; it reports false, and holds nothing,
// when a's process has died. exit ends the step.
func (r *run) enter(a *actor) bool {
	if !r.life.on {
		return true
	}
	r.life.mu.RLock()
	if a.inc.Load() != r.life.cur.Load() {
		r.life.mu.RUnlock()
		return false
	}
	return true
}

func (r *run) exit() {
	if r.life.on {
		r.life.mu.RUnlock()
	}
}

// hold records that a committed event is held only in memory; release that it left memory
// (delivered, or dropped on purpose).
func (r *run) hold(id string) {
	r.life.liveMu.Lock()
	r.life.live[id] = struct{}{}
	r.life.liveMu.Unlock()
}

func (r *run) release(id string) {
	if !r.life.on {
		return
	}
	r.life.liveMu.Lock()
	delete(r.life.live, id)
	r.life.liveMu.Unlock()
}

// sentUnmarked records, inside the send's step, that an outbox relay sent the row of event id
// and has not marked it done. Only runs that can crash keep the record.
func (r *run) sentUnmarked(id string) {
	if !r.life.on {
		return
	}
	r.life.liveMu.Lock()
	r.life.unmarked[id] = struct{}{}
	r.life.liveMu.Unlock()
}

// Marked implements Host.
func (r *run) Marked(ids ...string) {
	if !r.life.on {
		return
	}
	r.life.liveMu.Lock()
	for _, id := range ids {
		delete(r.life.unmarked, id)
	}
	r.life.liveMu.Unlock()
}

// crashAt asks the fault plan whether the process crashes where the actor in ctx stands, and if
// so crashes it: it records the crash with what the process held in memory, kills the actor's
// incarnation and starts the next one. It reports whether the process crashed; a goroutine of a
// process that already died cannot crash it again. It must not be called inside a step.
func (r *run) crashAt(ctx context.Context, p Point, carried []string) bool {
	if r.faultsOff.Load() || r.faults == nil && r.counted == nil {
		return false
	}
	a := actorOf(ctx)
	if a == nil {
		return false
	}
	if r.counted != nil && p == AfterCommit && len(carried) == 0 {
		return false // a plan by count counts the commits that carried an event
	}
	if r.faults != nil && !r.faults.Crash(p, a.name) {
		return false
	}
	l := &r.life
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	if l.off || a.inc.Load() != old {
		return false
	}
	if r.counted != nil && !r.counted.Visit(p) {
		return false
	}
	op := CrashOp{Seq: len(l.crashes) + 1, At: r.now(), Point: p, Actor: a.name, Carried: carried}
	if a.w != nil {
		op.Order = a.w.current.ID
	}
	l.liveMu.Lock()
	for id := range l.live {
		op.InFlight = append(op.InFlight, id)
	}
	clear(l.live)
	for id := range l.unmarked {
		op.Unmarked = append(op.Unmarked, id)
	}
	clear(l.unmarked)
	l.liveMu.Unlock()
	slices.SortFunc(op.InFlight, compareIDs)
	slices.SortFunc(op.Unmarked, compareIDs)
	l.crashes = append(l.crashes, op)

	close(old.dead)
	old.cancel()
	next := r.newIncarnation(r.runCtx, old.n+1)
	l.cur.Store(next)
	_ = r.strategy.Start(next.ctx, r) // the restart; the new goroutines wait for the lock
	return true
}

// endFaults ends the fault phase: nothing crashes any more, no conflict is forced, the mailer
// neither fails nor times out. What the process holds is then delivered in the liveness phase.
func (r *run) endFaults() {
	r.faultsOff.Store(true)
	if r.life.on {
		r.life.mu.Lock()
		r.life.off = true
		r.life.mu.Unlock()
	}
	r.mailer.Heal()
}

// Alive implements Host.
func (r *run) Alive(ctx context.Context) bool {
	if !r.life.on {
		return true
	}
	a := actorOf(ctx)
	return a == nil || !a.inc.Load().isDead()
}

// Step implements Host.
func (r *run) Step(ctx context.Context, fn func()) bool {
	a := actorOf(ctx)
	if a != nil && !r.enter(a) {
		return false
	}
	fn()
	if a != nil {
		r.exit()
	}
	return true
}
