package domain

// White-box tests of the persistent treap behind Batch. The black-box tests check what a batch
// holds; these check the shape the treap relies on to stay O(log n) per change (key order, heap
// order on priorities that are a spread-out hash of the key), which the public API cannot see.

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkTreap fails unless n is a valid treap: keys strictly increasing in order, every node's
// priority at least its children's and equal to the hash of its key. It returns the number of
// nodes and the sum of their quantities.
func checkTreap(t *testing.T, n *lineNode) (size, qty int) {
	t.Helper()
	var prev *lineNode
	walk(n, func(x *lineNode) bool {
		if prev != nil {
			require.Negative(t, compareKey(prev.line.OrderID, prev.line.SKU, x),
				"key order: %+v before %+v", prev.line, x.line)
		}
		for _, child := range []*lineNode{x.left, x.right} {
			if child != nil {
				require.GreaterOrEqual(t, x.prio, child.prio, "heap order: %+v above %+v", x.line, child.line)
			}
		}
		require.Equal(t, keyHash(x.line.OrderID, x.line.SKU), x.prio, "priority of %+v", x.line)
		prev = x
		size++
		qty += x.line.Qty
		return true
	})
	return size, qty
}

func TestTreapInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 14))
	b := NewBatch("b1", "TREAP", 5000, time.Time{})
	var copies []Batch
	for op := range 10_000 {
		l := OrderLine{OrderID: fmt.Sprintf("o%03d", r.IntN(800)), SKU: "TREAP", Qty: 1 + r.IntN(9)}
		if r.IntN(3) == 0 {
			if held, ok := b.Holds(l.OrderID, l.SKU); ok {
				l = held
			}
			b.Deallocate(l)
		} else {
			b.Allocate(l)
		}
		if op%250 == 0 {
			size, qty := checkTreap(t, b.lines)
			require.Equal(t, b.count, size, "op %d: node count", op)
			require.Equal(t, b.allocated, qty, "op %d: quantity sum", op)
			copies = append(copies, *b)
		}
	}
	for i, c := range copies {
		size, qty := checkTreap(t, c.lines)
		assert.Equal(t, c.count, size, "copy %d: node count", i)
		assert.Equal(t, c.allocated, qty, "copy %d: quantity sum", i)
	}
}

func TestSplit(t *testing.T) {
	b := NewBatch("b1", "S", 1000, time.Time{})
	for i := 0; i < 40; i += 2 {
		b.Allocate(OrderLine{OrderID: fmt.Sprintf("o%02d", i), SKU: "S", Qty: 1})
	}
	before := b.Lines()
	tests := []struct {
		name      string
		orderID   string
		wantBelow int
	}{
		{name: "held key goes to rest", orderID: "o10", wantBelow: 5},
		{name: "absent key", orderID: "o11", wantBelow: 6},
		{name: "below all", orderID: "a", wantBelow: 0},
		{name: "first key", orderID: "o00", wantBelow: 0},
		{name: "above all", orderID: "z", wantBelow: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			below, rest := split(b.lines, tt.orderID, "S")

			nBelow, _ := checkTreap(t, below)
			nRest, _ := checkTreap(t, rest)
			assert.Equal(t, tt.wantBelow, nBelow, "split(%q): keys below", tt.orderID)
			assert.Equal(t, 20-tt.wantBelow, nRest, "split(%q): keys at or above", tt.orderID)
			walk(below, func(n *lineNode) bool {
				assert.Negative(t, compareKey(n.line.OrderID, n.line.SKU, &lineNode{line: OrderLine{OrderID: tt.orderID, SKU: "S"}}))
				return true
			})
			walk(rest, func(n *lineNode) bool {
				assert.GreaterOrEqual(t, compareKey(n.line.OrderID, n.line.SKU, &lineNode{line: OrderLine{OrderID: tt.orderID, SKU: "S"}}), 0)
				return true
			})
			assert.Equal(t, before, b.Lines(), "split must not change the tree it splits")
		})
	}
}

func TestKeyHashSpreads(t *testing.T) {
	seen := make(map[uint64]string)
	add := func(orderID, sku string) {
		key := fmt.Sprintf("(%q, %q)", orderID, sku)
		h := keyHash(orderID, sku)
		if other, dup := seen[h]; dup {
			t.Fatalf("keyHash%s = keyHash%s = %#x: distinct keys must get distinct priorities", key, other, h)
		}
		seen[h] = key
	}
	for i := range 100_000 {
		add(fmt.Sprintf("order-%d", i), "SKU")
	}
	for i := range 1000 {
		add("order-0", fmt.Sprintf("SKU-%d", i))
	}
	// The separator keeps the boundary between order id and sku.
	add("ab", "c")
	add("a", "bc")
}
