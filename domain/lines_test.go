package domain_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// lineModel is the obvious implementation of a batch's allocations: lines in allocation order.
type lineModel struct {
	purchased int
	lines     []domain.OrderLine
}

func (m *lineModel) allocated() int {
	total := 0
	for _, l := range m.lines {
		total += l.Qty
	}
	return total
}

func (m *lineModel) index(orderID, sku string) int {
	return slices.IndexFunc(m.lines, func(l domain.OrderLine) bool { return l.OrderID == orderID && l.SKU == sku })
}

func (m *lineModel) allocate(sku string, l domain.OrderLine) {
	if l.Validate() != nil || l.SKU != sku || m.index(l.OrderID, l.SKU) >= 0 || m.purchased-m.allocated() < l.Qty {
		return
	}
	m.lines = append(m.lines, l)
}

func (m *lineModel) deallocate(l domain.OrderLine) {
	if i := m.index(l.OrderID, l.SKU); i >= 0 && m.lines[i] == l {
		m.lines = slices.Delete(m.lines, i, i+1)
	}
}

func (m *lineModel) clone() *lineModel {
	return &lineModel{purchased: m.purchased, lines: slices.Clone(m.lines)}
}

// version is a batch together with the model of what it must hold.
type version struct {
	name  string
	batch *domain.Batch
	model *lineModel
}

// check compares the batch with its model through every read method.
func (v version) check(t *testing.T, universe []string, sku string) {
	t.Helper()
	want := v.model.lines
	if want == nil {
		want = []domain.OrderLine{}
	}
	require.Equal(t, want, v.batch.Lines(), "%s: Lines", v.name)
	require.Equal(t, v.model.allocated(), v.batch.AllocatedQuantity(), "%s: AllocatedQuantity", v.name)
	require.Equal(t, v.model.purchased-v.model.allocated(), v.batch.AvailableQuantity(), "%s: AvailableQuantity", v.name)
	require.Equal(t, len(v.model.lines), v.batch.Allocations(), "%s: Allocations", v.name)
	for _, id := range universe {
		got, ok := v.batch.Holds(id, sku)
		i := v.model.index(id, sku)
		require.Equal(t, i >= 0, ok, "%s: Holds(%q, %q)", v.name, id, sku)
		if ok {
			require.Equal(t, v.model.lines[i], got, "%s: Holds(%q, %q)", v.name, id, sku)
		}
	}
}

// TestBatchCopiesArePersistent allocates and deallocates many random lines on a batch and on
// copies of it taken at various points (Batch values and Product clones), some of which go on
// changing while others stay frozen. Each copy must hold exactly what a plain model says it holds:
// a change to one copy that leaked into another would mean a shared node was modified in place.
func TestBatchCopiesArePersistent(t *testing.T) {
	const (
		sku      = "PERSISTENT-TABLE"
		ops      = 20_000
		ids      = 400
		capacity = 900 // small enough that some lines do not fit
	)
	r := rand.New(rand.NewPCG(2026, 8))
	universe := make([]string, ids)
	for i := range universe {
		universe[i] = fmt.Sprintf("order-%04d", i)
	}
	randomLine := func() domain.OrderLine {
		return domain.OrderLine{OrderID: universe[r.IntN(ids)], SKU: sku, Qty: 1 + r.IntN(5)}
	}

	root := version{name: "root", batch: domain.NewBatch("b1", sku, capacity, time.Time{}), model: &lineModel{purchased: capacity}}
	live := []version{root} // changed as the test goes
	var frozen []version    // never changed after they were taken
	var products []version  // batches of frozen Product clones
	p := domain.NewProduct(sku, []*domain.Batch{root.batch})

	for op := range ops {
		v := live[0]
		if r.IntN(4) == 0 {
			v = live[r.IntN(len(live))]
		}
		switch k := r.IntN(10); {
		case k < 6:
			l := randomLine()
			v.batch.Allocate(l)
			v.model.allocate(sku, l)
		case k < 8 && len(v.model.lines) > 0:
			l := v.model.lines[r.IntN(len(v.model.lines))]
			v.batch.Deallocate(l)
			v.model.deallocate(l)
		default:
			// A line that is usually not held, or held with another quantity.
			l := randomLine()
			v.batch.Deallocate(l)
			v.model.deallocate(l)
		}

		if op%500 == 0 {
			c := *v.batch
			frozen = append(frozen, version{name: fmt.Sprintf("frozen copy of %s at op %d", v.name, op), batch: &c, model: v.model.clone()})
			c2 := p.Clone()
			products = append(products, version{name: fmt.Sprintf("product clone at op %d", op), batch: c2.Batches[0], model: root.model.clone()})
		}
		if op%1500 == 0 && len(live) < 12 {
			c := *v.batch
			live = append(live, version{name: fmt.Sprintf("live copy of %s at op %d", v.name, op), batch: &c, model: v.model.clone()})
		}
		if op%2000 == 0 {
			for _, v := range live {
				v.check(t, universe, sku)
			}
		}
	}
	require.Greater(t, len(root.model.lines), ids/10, "the test should build a large batch")

	for _, group := range [][]version{live, frozen, products} {
		for _, v := range group {
			v.check(t, universe, sku)
		}
	}
}

// TestBatchCopyDeallocateEverything empties a copy of a big batch in random order and checks the
// original still holds every line.
func TestBatchCopyDeallocateEverything(t *testing.T) {
	const n = 2000
	r := rand.New(rand.NewPCG(7, 7))
	b := domain.NewBatch("b1", "SKU", n*3, time.Time{})
	var want []domain.OrderLine
	for _, i := range r.Perm(n) {
		l := domain.OrderLine{OrderID: fmt.Sprintf("o%05d", i), SKU: "SKU", Qty: 1 + i%3}
		b.Allocate(l)
		want = append(want, l)
	}
	require.Equal(t, want, b.Lines())

	c := *b
	for _, i := range r.Perm(n) {
		c.Deallocate(want[i])
		_, held := c.Holds(want[i].OrderID, "SKU")
		require.False(t, held, "copy still holds %+v after Deallocate", want[i])
	}

	assert.Equal(t, 0, c.Allocations())
	assert.Equal(t, 0, c.AllocatedQuantity())
	assert.Empty(t, c.Lines())
	assert.Equal(t, want, b.Lines())
	assert.Equal(t, n, b.Allocations())
	for _, l := range want {
		got, ok := b.Holds(l.OrderID, l.SKU)
		require.True(t, ok, "original lost %+v", l)
		require.Equal(t, l, got)
	}
}

// TestCloneAndAllocateCostDoNotGrowWithHistory checks the promise behind cheap units of work:
// cloning a product shares its allocations, and one change copies O(log n) nodes, so the heap
// allocations of Clone+Allocate and Clone+Deallocate stay small however many lines the batch
// holds. History is allocated in key order, the worst case for an unbalanced tree. It counts
// allocations, not time, so it does not depend on the machine.
func TestCloneAndAllocateCostDoNotGrowWithHistory(t *testing.T) {
	const (
		history = 4000
		limit   = 80 // a balanced tree of 4000 lines needs about 25; a list would need thousands
	)
	base := domain.NewProduct("COST", []*domain.Batch{domain.NewBatch("b1", "COST", domain.MaxQty, time.Time{})})
	for i := range history {
		_, err := base.Allocate(line(fmt.Sprintf("order-%06d", i), "COST", 1))
		require.NoError(t, err)
	}
	r := rand.New(rand.NewPCG(4, 2))
	newLines := make([]domain.OrderLine, 64)
	for i := range newLines {
		newLines[i] = line(fmt.Sprintf("order-%06d", history+i), "COST", 1) // after every held key
		if i%2 == 1 {
			newLines[i].OrderID = fmt.Sprintf("order-%06d-x", r.IntN(history)) // between held keys
		}
	}
	heldLines := base.Batches[0].Lines()

	i := 0
	allocate := testing.AllocsPerRun(len(newLines), func() {
		p := base.Clone()
		if _, err := p.Allocate(newLines[i%len(newLines)]); err != nil {
			panic(err)
		}
		i++
	})
	j := 0
	deallocate := testing.AllocsPerRun(64, func() {
		p := base.Clone()
		p.Batches[0].Deallocate(heldLines[(j*61)%history])
		j++
	})

	t.Logf("allocs: Clone+Allocate %v, Clone+Deallocate %v", allocate, deallocate)
	assert.LessOrEqual(t, allocate, float64(limit), "heap allocations of Clone+Allocate with %d lines held", history)
	assert.LessOrEqual(t, deallocate, float64(limit), "heap allocations of Clone+Deallocate with %d lines held", history)
	assert.Equal(t, history, base.Allocated(), "the clones must not have changed the base product")
}

// TestBatchChangesSince checks what a store would write after a transaction: the lines added and
// removed since the batch was loaded, and no answer when the batch was not made from that one.
func TestBatchChangesSince(t *testing.T) {
	loaded := domain.NewBatch("b1", "LAMP", 100, time.Time{})
	loaded.Allocate(line("kept", "LAMP", 1))
	loaded.Allocate(line("gone", "LAMP", 2))
	changed := *loaded // a transaction's copy
	changed.Allocate(line("new", "LAMP", 3))
	changed.Deallocate(line("gone", "LAMP", 2))
	changed.Allocate(line("brief", "LAMP", 4))
	changed.Deallocate(line("brief", "LAMP", 4))

	tests := []struct {
		name           string
		b, since       *domain.Batch
		added, removed []domain.OrderLine
		ok             bool
	}{
		{"changed since loaded", &changed, loaded, []domain.OrderLine{line("new", "LAMP", 3)}, []domain.OrderLine{line("gone", "LAMP", 2)}, true},
		{"unchanged", loaded, loaded, nil, nil, true},
		{"loaded since changed", loaded, &changed, nil, nil, false},
		{"built separately", domain.NewBatch("b1", "LAMP", 100, time.Time{}), loaded, nil, nil, false},
		{"since an empty batch", loaded, domain.NewBatch("b1", "LAMP", 100, time.Time{}),
			[]domain.OrderLine{line("kept", "LAMP", 1), line("gone", "LAMP", 2)}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			added, removed, ok := tt.b.ChangesSince(tt.since)
			require.Equal(t, tt.ok, ok, "ChangesSince ok")
			assert.Equal(t, tt.added, added, "added")
			assert.Equal(t, tt.removed, removed, "removed")
		})
	}
}
