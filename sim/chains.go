package sim

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Chains counts the messages the bus handled and how deep their chains went (Config.QuantityChanges).
type Chains struct {
	QuantityChanges int64            `json:"quantity_changes"` // batch quantity changes the workers made
	ChangeErrors    int64            `json:"change_errors"`    // of them, refused (a version conflict past the retries)
	Reallocations   int64            `json:"reallocations"`    // Allocate commands sent by Deallocated events
	Messages        map[string]int64 `json:"messages"`         // messages handled, by type (Allocate, Allocated, Deallocated, OutOfStock, ...)
	DepthMax        int64            `json:"depth_max"`        // the deepest message: a root is 1, its children 2, ...
	DepthP99        int64            `json:"depth_p99"`        // 99th percentile of the depth over all messages handled
	DepthMean       float64          `json:"depth_mean"`
}

// chainStats is an actor's share of Chains (Config.QuantityChanges), touched only by the actor's
// goroutine (the bus runs handlers on the goroutine that handles the message), so it takes no
// lock.
type chainStats struct {
	changes, changeErrors int64
	messages              [numMsgKinds]int64
	depth                 *Histogram // of every message, as a Duration of depth nanoseconds
	reallocs              []Reallocation
	// cause is the Deallocated whose handler is running (chainMiddleware): an ID drawn meanwhile
	// is the Allocate command the handler sends, numbered in commands, not in the event log.
	cause    string
	commands []command
	cmdBuf   []byte
	// qty is, by index in the actor's event log, the quantity of the line each Deallocated it
	// committed took out of its batch (kept beside the log, which packs its records).
	qty map[int]int32
}

// command is an Allocate command a Deallocated handler sent on the actor's goroutine: its cause,
// and whether its unit of work committed (its outcome is then a Reallocation already).
type command struct {
	cause     string
	committed bool
}

func newChainStats() *chainStats { return &chainStats{depth: NewHistogram()} }

const (
	msgAllocate = iota
	msgChangeBatchQuantity
	msgCreateBatch
	msgAllocated
	msgDeallocated
	msgOutOfStock
	msgOther
	numMsgKinds
)

var msgNames = [numMsgKinds]string{"Allocate", "ChangeBatchQuantity", "CreateBatch", "Allocated", "Deallocated", "OutOfStock", "other"}

func msgKind(m domain.Message) int {
	switch m.(type) {
	case domain.Allocate:
		return msgAllocate
	case domain.ChangeBatchQuantity:
		return msgChangeBatchQuantity
	case domain.CreateBatch:
		return msgCreateBatch
	case domain.Allocated:
		return msgAllocated
	case domain.Deallocated:
		return msgDeallocated
	case domain.OutOfStock:
		return msgOutOfStock
	}
	return msgOther
}

// chainMiddleware marks, on the actor handling it, the Deallocated whose handler is running, so
// that the ID the handler (service.Register's) draws for the Allocate command it sends is a
// command's, recorded with its cause: "c<stream>-<n>". It is the innermost middleware, around the
// handler alone.
func (r *run) chainMiddleware(next service.HandlerFunc) service.HandlerFunc {
	return func(ctx context.Context, e domain.Event) error {
		d, ok := e.(domain.Deallocated)
		a := actorOf(ctx)
		if !ok || a == nil || a.chain == nil {
			return next(ctx, e)
		}
		prev := a.chain.cause
		a.chain.cause = d.ID
		defer func() { a.chain.cause = prev }()
		return next(ctx, e)
	}
}

// commandID numbers the Allocate command the running Deallocated handler sends.
func (a *actor) commandID() string {
	c := a.chain
	c.commands = append(c.commands, command{cause: c.cause})
	c.cmdBuf = strconv.AppendInt(append(c.cmdBuf[:0], 'c'), int64(a.stream), 10)
	c.cmdBuf = strconv.AppendInt(append(c.cmdBuf, '-'), int64(len(c.commands)), 10)
	return string(c.cmdBuf)
}

// command returns the command of this actor with the ID, or nil.
func (a *actor) command(id string) *command {
	if a.chain == nil || len(id) < 4 || id[0] != 'c' {
		return nil
	}
	stream, n, ok := splitID(id)
	if !ok || stream != a.stream || n > len(a.chain.commands) {
		return nil
	}
	return &a.chain.commands[n-1]
}

// reallocated records the outcome of a reallocation when its unit of work commits e, the Allocated
// or OutOfStock event of an Allocate command the actor sent: so a crash right after the commit
// still leaves the record of where the line went.
func (a *actor) reallocated(e domain.Event) {
	var re Reallocation
	switch e := e.(type) {
	case domain.Allocated:
		re = Reallocation{Order: e.OrderID, Qty: e.Qty, Batch: e.BatchRef, Outcome: Allocated}
	case domain.OutOfStock:
		re = Reallocation{Order: e.OrderID, Qty: e.Qty, Outcome: OutOfStock}
	default:
		return
	}
	cmd := a.command(e.Identity().CausationID)
	if cmd == nil || cmd.committed {
		return
	}
	cmd.committed, re.Cause = true, cmd.cause
	a.chain.reallocs = append(a.chain.reallocs, re)
}

// trace is the bus's trace: it counts each message by type and its chain depth, 1 for a root (no
// cause, or a cause not seen), else its cause's depth + 1. An Allocate command of the actor's that
// committed no event (reallocated records those that did) is, in a live process, a reallocation
// too: one that failed, or one that succeeded with nothing to do, since a batch held the line
// already. That happens under at-least-once: a Deallocated sent again after its line was
// reallocated and deallocated once more (its relay crashed between the send and the mark)
// reallocates the line a second time, and the newer Deallocated, when it comes, finds the line
// held; it was delivered all the same, and its reallocation names the batch holding the line
// (read as the trace runs). One whose process died under it is not recorded: the process did
// not live to deliver it, and its Deallocated counts as lost unless it is sent again.
func (r *run) trace(ctx context.Context, m domain.Message, err error) {
	a := actorOf(ctx)
	if a == nil || a.chain == nil {
		return // the seeder
	}
	c := a.chain
	k := msgKind(m)
	c.messages[k]++
	if e, ok := m.(domain.Event); ok && k != msgDeallocated {
		// Handled, even when it joined a running call: no longer held. A Deallocated is
		// delivered by its reallocation, which runs after it in the call; its Deliver releases it.
		r.release(e.Identity().ID)
	}
	meta := m.Identity()
	depth := int32(1)
	if meta.CausationID != "" {
		if d, ok := r.depths.Load(meta.CausationID); ok {
			depth = d.(int32) + 1
		}
	}
	if _, isCmd := m.(domain.Command); isCmd || k == msgDeallocated {
		r.depths.Store(meta.ID, depth)
	}
	c.depth.Record(time.Duration(depth))
	if cmd, ok := m.(domain.Allocate); ok {
		if own := a.command(cmd.ID); own != nil && !own.committed && r.Alive(ctx) {
			own.committed = true
			re := Reallocation{Cause: own.cause, Order: cmd.OrderID, Qty: cmd.Qty, Outcome: classify(err)}
			if err == nil {
				re.Batch = r.batchHolding(cmd.SKU, cmd.OrderID)
			}
			c.reallocs = append(c.reallocs, re)
		}
	}
}

// batchHolding returns the batch of sku that holds order's line, or "" when none does (a quantity
// change took it out since).
func (r *run) batchHolding(sku, order string) string {
	p, ok := r.store.Product(sku)
	if !ok {
		return ""
	}
	for _, b := range p.Batches {
		if _, held := b.Holds(order, sku); held {
			return b.Reference
		}
	}
	return ""
}

// changeQuantity changes a random batch of sku to a seeded quantity in 0..its purchased quantity.
func (w *worker) changeQuantity(sku string) {
	refs := w.run.batchRefs[sku]
	if len(refs) == 0 {
		return
	}
	ref := refs[w.qtyRNG.IntN(len(refs))]
	purchased := 0
	if p, ok := w.run.store.Product(sku); ok {
		for _, b := range p.Batches {
			if b.Reference == ref {
				purchased = b.PurchasedQuantity()
			}
		}
	}
	qty := w.qtyRNG.IntN(purchased + 1)
	w.chain.changes++
	if err := w.changeBatch(ref, qty); err != nil {
		w.chain.changeErrors++
	}
}

// changeBatch sends the quantity change as a request of the live process, like allocate: when the
// process dies under it, the worker never learns the outcome, and the events it raised are marked
// so (request).
func (w *worker) changeBatch(ref string, qty int) error {
	_, err := w.request(func() error { return service.ChangeBatchQuantity(w.ctx, w.run.uow, ref, qty) })
	return err
}

func (r *run) chains() *Chains {
	if r.cfg.QuantityChanges <= 0 {
		return nil
	}
	c := &Chains{Messages: map[string]int64{}}
	h := NewHistogram()
	for _, a := range r.allActors() {
		if a.chain == nil {
			continue
		}
		c.QuantityChanges += a.chain.changes
		c.ChangeErrors += a.chain.changeErrors
		c.Reallocations += int64(len(a.chain.reallocs))
		for k, n := range a.chain.messages {
			if n > 0 {
				c.Messages[msgNames[k]] += n
			}
		}
		h.Merge(a.chain.depth)
	}
	if h.Count() > 0 {
		c.DepthMax = int64(h.Max())
		c.DepthP99 = int64(h.Quantile(99))
		c.DepthMean = float64(h.Sum()) / float64(h.Count())
	}
	return c
}

// attribute names the order an event is about, when a chain raised it during another order's
// request (a reallocation, a quantity change).
func (a *actor) attribute(i int, e domain.Event) {
	if a.chain == nil {
		return
	}
	op := &a.events[i]
	var id string
	switch e := e.(type) {
	case domain.Allocated:
		id = e.OrderID
	case domain.OutOfStock:
		id = e.OrderID
	case domain.Deallocated:
		id = e.OrderID
		if a.chain.qty == nil {
			a.chain.qty = map[int]int32{}
		}
		a.chain.qty[i] = int32(e.Qty)
	default:
		return
	}
	if stream, seq, ok := splitID(id); ok && id[0] == 'o' && stream <= math.MaxUint16 {
		op.orderStream, op.orderSeq = uint16(stream), int32(seq)
	}
}
