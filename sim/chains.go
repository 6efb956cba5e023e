package sim

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// Reallocation is what became of a line its batch no longer holds: the Allocate command that a
// Deallocated event sent, and its outcome (Allocated into Batch, or OutOfStock).
type Reallocation struct {
	Cause   string  // the Deallocated event's ID
	Order   string  // the order of the line
	Qty     int     // its quantity
	Batch   string  // where it went, when Outcome is Allocated
	Outcome Outcome // Allocated, OutOfStock or Failed
}

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

// chainStats is a worker's share of Chains, touched only by the worker's goroutine (sync
// strategies run every handler there), so the trace takes no lock.
type chainStats struct {
	changes, changeErrors int64
	messages              [numMsgKinds]int64
	depths                map[string]int32 // depth of the messages that can have children: commands and Deallocated
	depth                 *Histogram       // of every message, as a Duration of depth nanoseconds
	reallocs              []Reallocation
	cmdSeq                int
	cmdBuf                []byte
}

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

// subscribeChains registers the reallocation chain on the run's bus: a Deallocated event sends an
// Allocate command, which allocates the line in a new unit of work of the worker whose request
// raised it. Out of stock ends the chain with an OutOfStock event, not an error.
func (r *run) subscribeChains() {
	service.Subscribe(r.bus, func(ctx context.Context, e domain.Deallocated) error {
		w := workerOf(ctx)
		if w == nil {
			return errors.New("sim: Deallocated handled outside a worker")
		}
		w.chain.cmdSeq++
		w.chain.cmdBuf = strconv.AppendInt(append(w.chain.cmdBuf[:0], 'c'), int64(w.id), 10)
		w.chain.cmdBuf = strconv.AppendInt(append(w.chain.cmdBuf, '-'), int64(w.chain.cmdSeq), 10)
		cmd := domain.Allocate{Meta: domain.Meta{ID: string(w.chain.cmdBuf), CausationID: e.ID}, OrderID: e.OrderID, SKU: e.SKU, Qty: e.Qty}
		return r.bus.Handle(ctx, cmd)
	})
	service.HandleCommand(r.bus, func(ctx context.Context, c domain.Allocate) error {
		w := workerOf(ctx)
		if w == nil {
			return errors.New("sim: Allocate handled outside a worker")
		}
		ref, err := service.Allocate(ctx, w.uow, c.OrderID, c.SKU, c.Qty)
		out := classify(err)
		w.chain.reallocs = append(w.chain.reallocs, Reallocation{Cause: c.CausationID, Order: c.OrderID, Qty: c.Qty, Batch: ref, Outcome: out})
		if out == OutOfStock || out == Allocated {
			return nil
		}
		return err
	})
}

func workerOf(ctx context.Context) *worker {
	if a := actorOf(ctx); a != nil {
		return a.w
	}
	return nil
}

// trace is the bus's trace: it counts each message by type and its chain depth, 1 for a root (no
// cause, or a cause not seen), else its cause's depth + 1.
func (r *run) trace(ctx context.Context, m domain.Message, _ error) {
	w := workerOf(ctx)
	if w == nil {
		return // the seeder
	}
	c := &w.chain
	k := msgKind(m)
	c.messages[k]++
	meta := m.Identity()
	depth := int32(1)
	if d, ok := c.depths[meta.CausationID]; ok && meta.CausationID != "" {
		depth = d + 1
	}
	if _, isCmd := m.(domain.Command); isCmd || k == msgDeallocated {
		c.depths[meta.ID] = depth
	}
	c.depth.Record(time.Duration(depth))
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
	if err := service.ChangeBatchQuantity(w.ctx, w.uow, ref, qty); err != nil {
		w.chain.changeErrors++
	}
}

func (r *run) chains() *Chains {
	if r.cfg.QuantityChanges <= 0 {
		return nil
	}
	c := &Chains{Messages: map[string]int64{}}
	h := NewHistogram()
	for _, w := range r.workers {
		c.QuantityChanges += w.chain.changes
		c.ChangeErrors += w.chain.changeErrors
		c.Reallocations += int64(len(w.chain.reallocs))
		for k, n := range w.chain.messages {
			if n > 0 {
				c.Messages[msgNames[k]] += n
			}
		}
		h.Merge(w.chain.depth)
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
func (w *worker) attribute(op *eventRec, e domain.Event) {
	if w.run.cfg.QuantityChanges <= 0 {
		return
	}
	var id string
	switch e := e.(type) {
	case domain.Allocated:
		id = e.OrderID
	case domain.OutOfStock:
		id = e.OrderID
	case domain.Deallocated:
		id = e.OrderID
	default:
		return
	}
	if stream, seq, ok := splitID(id); ok && id[0] == 'o' {
		op.orderStream, op.orderSeq = int32(stream), int32(seq)
	}
}
