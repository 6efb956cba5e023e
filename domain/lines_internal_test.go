package domain

// White-box tests of the persistent hash trie behind Batch. The black-box tests check what a
// batch holds; these check what the public API cannot see: that every node is well formed, that
// a change copies its path and never touches a node another version can reach, and that keys
// whose hashes collide, in part or in full, are kept apart. The trie functions take the hash of
// each line from their caller, so these tests give them hashes built to collide.

import (
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkTrie fails unless the trie n is well formed, and returns its lines.
func checkTrie(t *testing.T, n *lineNode) []allocation {
	t.Helper()
	var lines []allocation
	if n != nil {
		checkNode(t, n, rootShift, 0, &lines)
	}
	return lines
}

// checkNode checks the node n at shift, whose lines all have hashes that start with the bits of
// prefix consumed by the levels above it, and appends its lines to lines.
func checkNode(t *testing.T, n *lineNode, shift int, prefix uint64, lines *[]allocation) {
	t.Helper()
	require.Positive(t, int(n.count)+len(n.children), "empty node at shift %d", shift)
	require.Len(t, n.children, bits.OnesCount32(n.childMap), "one child per bit of the child map at shift %d", shift)
	consumed := rootShift - shift // bits of the hash the levels above n have used
	r, off := n.run(), 0
	for i := range r.n {
		a, next := r.decode(off)
		require.Greater(t, next, off, "line %d at shift %d takes no bytes", i, shift)
		if consumed > 0 {
			require.Equal(t, prefix, a.hash>>(64-consumed), "line %+v is under the slots of another hash at shift %d", a.line, shift)
		}
		if shift >= 0 {
			require.Zero(t, n.childMap&(1<<chunk(a.hash, shift)), "line %+v is inline in a slot that has a child at shift %d", a.line, shift)
		}
		if i < nodeCapacity {
			require.Equal(t, tag(a.hash), n.tags[i], "tag of line %d at shift %d", i, shift)
		}
		*lines = append(*lines, a)
		off = next
	}
	require.Equal(t, len(n.data), off, "the data at shift %d holds more than its %d lines", shift, n.count)
	if shift < 0 {
		require.Zero(t, n.childMap, "a collision node has no children")
		return
	}
	require.LessOrEqual(t, int(n.count), nodeCapacity, "lines inline at shift %d", shift)
	for i, m := 0, n.childMap; m != 0; i, m = i+1, m&(m-1) {
		s := bits.TrailingZeros32(m)
		require.NotNil(t, n.children[i], "child of slot %d at shift %d", s, shift)
		checkNode(t, n.children[i], shift-levelBits, prefix<<levelBits|uint64(s), lines)
	}
}

// frozenNode is what a node held when a test froze it.
type frozenNode struct {
	childMap, count uint32
	tags            [nodeCapacity]uint8
	data            string
	children        []*lineNode
}

// freeze records every node reachable from n.
func freeze(n *lineNode, into map[*lineNode]frozenNode) {
	if n == nil {
		return
	}
	if _, done := into[n]; done {
		return
	}
	into[n] = frozenNode{childMap: n.childMap, count: n.count, tags: n.tags, data: n.data, children: slices.Clone(n.children)}
	for _, c := range n.children {
		freeze(c, into)
	}
}

// requireUnchanged fails if a frozen node was changed since it was frozen.
func requireUnchanged(t *testing.T, frozen map[*lineNode]frozenNode) {
	t.Helper()
	for n, f := range frozen {
		now := frozenNode{childMap: n.childMap, count: n.count, tags: n.tags, data: n.data, children: n.children}
		require.Equal(t, f.childMap, now.childMap, "a shared node's child map changed")
		require.Equal(t, f.count, now.count, "a shared node's line count changed")
		require.Equal(t, f.tags, now.tags, "a shared node's tags changed")
		require.Equal(t, f.data, now.data, "a shared node's lines changed")
		require.True(t, slices.Equal(f.children, now.children), "a shared node's children changed")
	}
}

// hashes are the hash functions the trie is tested with: the real one, and ones that make keys
// collide in their top bits (so paths run deep before they part) or in all their bits.
var hashes = []struct {
	name string
	hash func(orderID, sku string) uint64
}{
	{name: "keyHash", hash: keyHash},
	{name: "16 values in the top bits", hash: func(o, s string) uint64 { return keyHash(o, s) & (levelMask << rootShift) }},
	{name: "3 values in the bottom bits", hash: func(o, s string) uint64 { return keyHash(o, s) % 3 }},
	{name: "2 values, one bit apart at each level", hash: func(o, s string) uint64 { return keyHash(o, s) % 2 * 0x1111_1111_1111_1111 }},
	{name: "constant", hash: func(string, string) uint64 { return 0xdead_beef }},
}

type modelKey struct{ orderID, sku string }

// version is a trie root together with the model of what it holds.
type trieVersion struct {
	name  string
	root  *lineNode
	model map[modelKey]allocation
}

// check compares the trie with its model: its lines, and a lookup of every key of the universe.
func (v trieVersion) check(t *testing.T, hash func(string, string) uint64, universe []modelKey) {
	t.Helper()
	got := checkTrie(t, v.root)
	require.Len(t, got, len(v.model), "%s: lines", v.name)
	for _, a := range got {
		require.Equal(t, v.model[modelKey{a.line.OrderID, a.line.SKU}], a, "%s: line", v.name)
	}
	for _, k := range universe {
		a, ok := lookup(v.root, hash(k.orderID, k.sku), k.orderID, k.sku)
		want, held := v.model[k]
		require.Equal(t, held, ok, "%s: lookup(%v)", v.name, k)
		require.Equal(t, want, a, "%s: lookup(%v)", v.name, k)
	}
	wantLines := slices.SortedFunc(maps.Values(v.model), func(a, b allocation) int { return int(a.seq) - int(b.seq) })
	lines := make([]OrderLine, len(wantLines))
	for i, a := range wantLines {
		lines[i] = a.line
	}
	require.Equal(t, lines, linesBySeq(v.root, len(v.model)), "%s: lines by seq", v.name)
}

// TestTrieAgainstModel inserts and removes random lines in a trie and in copies of it taken along
// the way, with every hash function, and checks each version against a map: its lines, lookups,
// the shape of its nodes, and that no node a frozen version can reach ever changed.
func TestTrieAgainstModel(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 11))
			var universe []modelKey
			for i := range 150 {
				// Two skus, and order ids of various lengths, so that keys are not all alike.
				universe = append(universe, modelKey{orderID: fmt.Sprintf("o%0*d", 1+i%5, i), sku: []string{"S", "SKU-LONGER"}[i%2]})
			}
			live := []*trieVersion{{name: "root", model: map[modelKey]allocation{}}}
			var frozen []trieVersion
			nodes := map[*lineNode]frozenNode{}
			seq := uint64(0)
			for op := range 4000 {
				v := live[r.IntN(len(live))]
				k := universe[r.IntN(len(universe))]
				hash := h.hash(k.orderID, k.sku)
				if _, held := v.model[k]; held {
					v.root = remove(v.root, hash, k.orderID, k.sku, rootShift)
					delete(v.model, k)
				} else {
					seq += 1 + uint64(r.IntN(300)) // seqs of one and several uvarint bytes
					a := allocation{line: OrderLine{OrderID: k.orderID, SKU: k.sku, Qty: 1 + r.IntN(1000)}, seq: seq, hash: hash}
					v.root = insert(v.root, a, rootShift)
					v.model[k] = a
				}
				if op%200 == 0 {
					f := trieVersion{name: fmt.Sprintf("copy of %s frozen at op %d", v.name, op), root: v.root, model: maps.Clone(v.model)}
					frozen = append(frozen, f)
					freeze(f.root, nodes)
					f.check(t, h.hash, universe)
				}
				if op%700 == 0 && len(live) < 6 {
					live = append(live, &trieVersion{name: fmt.Sprintf("copy of %s at op %d", v.name, op), root: v.root, model: maps.Clone(v.model)})
				}
			}
			for _, v := range live {
				v.check(t, h.hash, universe)
			}
			for _, v := range frozen {
				v.check(t, h.hash, universe)
			}
			requireUnchanged(t, nodes)
		})
	}
}

// TestTrieEmptiesCompletely removes every line of a trie in random order, with every hash
// function: each step leaves a well-formed trie, and the last leaves nothing.
func TestTrieEmptiesCompletely(t *testing.T) {
	for _, h := range hashes {
		t.Run(h.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var root *lineNode
			var keys []modelKey
			for i := range 300 {
				k := modelKey{orderID: fmt.Sprintf("order-%d", i), sku: "SKU"}
				root = insert(root, allocation{line: OrderLine{OrderID: k.orderID, SKU: k.sku, Qty: 1}, seq: uint64(i + 1), hash: h.hash(k.orderID, k.sku)}, rootShift)
				keys = append(keys, k)
			}
			full := root
			nodes := map[*lineNode]frozenNode{}
			freeze(full, nodes)
			for i, j := range r.Perm(len(keys)) {
				k := keys[j]
				root = remove(root, h.hash(k.orderID, k.sku), k.orderID, k.sku, rootShift)
				require.Len(t, checkTrie(t, root), len(keys)-i-1, "lines left after removing %d", i+1)
				_, ok := lookup(root, h.hash(k.orderID, k.sku), k.orderID, k.sku)
				require.False(t, ok, "lookup(%v) after removing it", k)
			}
			assert.Nil(t, root, "a trie with no lines is nil")
			requireUnchanged(t, nodes)
			assert.Len(t, checkTrie(t, full), len(keys), "the trie the removals started from")
		})
	}
}

// TestTrieChangeCopiesOnlyItsPath inserts into and removes from a big trie and counts the nodes
// the new version does not share with the old: a path, not the trie.
func TestTrieChangeCopiesOnlyItsPath(t *testing.T) {
	var root *lineNode
	for i := range 50_000 {
		id := fmt.Sprintf("order-%d", i)
		root = insert(root, allocation{line: OrderLine{OrderID: id, SKU: "SKU", Qty: 1}, seq: uint64(i + 1), hash: keyHash(id, "SKU")}, rootShift)
	}
	old := map[*lineNode]frozenNode{}
	freeze(root, old)
	var height func(n *lineNode) int
	height = func(n *lineNode) int {
		h := 0
		for _, c := range n.children {
			h = max(h, height(c))
		}
		return h + 1
	}
	depth := height(root)
	newNodes := func(n *lineNode) int {
		all := map[*lineNode]frozenNode{}
		freeze(n, all)
		count := 0
		for p := range all {
			if _, shared := old[p]; !shared {
				count++
			}
		}
		return count
	}
	for i := range 50 {
		id := fmt.Sprintf("new-%d", i)
		next := insert(root, allocation{line: OrderLine{OrderID: id, SKU: "SKU", Qty: 1}, seq: 60_000, hash: keyHash(id, "SKU")}, rootShift)
		// An overflow adds one sub-node, or a chain of them for lines that share many bits.
		assert.LessOrEqual(t, newNodes(next), depth+3, "nodes copied to insert %s into %d lines", id, 50_000)
		gone := fmt.Sprintf("order-%d", i*997)
		next = remove(root, keyHash(gone, "SKU"), gone, "SKU", rootShift)
		assert.LessOrEqual(t, newNodes(next), depth+1, "nodes copied to remove %s", gone)
	}
	requireUnchanged(t, old)
}

// line returns an allocation of a line whose hash is given, so that a test can place it.
func lineWithHash(i int, hash uint64) allocation {
	return allocation{line: OrderLine{OrderID: fmt.Sprintf("o%d", i), SKU: "S", Qty: i + 1}, seq: uint64(i + 1), hash: hash}
}

// inSlot returns a hash whose slot at the root is s; i tells lines of one slot apart.
func inSlot(s, i int) uint64 { return uint64(s)<<rootShift | uint64(i)<<8 | uint64(i) }

func TestTrieNodeHoldsUpToItsCapacityInline(t *testing.T) {
	var root *lineNode
	for s := range nodeCapacity {
		root = insert(root, lineWithHash(s, inSlot(s%(1<<levelBits), s)), rootShift)
	}
	checkTrie(t, root)
	assert.Equal(t, uint32(nodeCapacity), root.count, "lines kept inline at capacity")
	assert.Zero(t, root.childMap, "no child before the node overflows")

	over := insert(root, lineWithHash(100, inSlot(5, 100)), rootShift)
	checkTrie(t, over)
	assert.Equal(t, uint32(1)<<5, over.childMap, "the fullest slot, and only it, moves down")
	assert.Equal(t, uint32(nodeCapacity-1), over.count, "lines left inline")
	assert.Equal(t, uint32(2), over.children[0].count, "lines in the new sub-node")
}

func TestTrieOverflowMovesTheFirstOfTheFullestSlots(t *testing.T) {
	// Slots 9 and 2 hold two lines each, all other slots but 0 one each: 17 lines.
	var root *lineNode
	i := 0
	for _, s := range []int{9, 9, 1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 2, 2} {
		root = insert(root, lineWithHash(i, inSlot(s, i)), rootShift)
		i++
	}
	checkTrie(t, root)
	assert.Equal(t, uint32(1)<<2, root.childMap, "of slots 2 and 9, equally full, slot 2 moves down")
}

func TestTrieRemoveTakesBackAChildThatFits(t *testing.T) {
	var root *lineNode
	for s := range nodeCapacity {
		root = insert(root, lineWithHash(s, inSlot(s, s)), rootShift)
	}
	root = insert(root, lineWithHash(100, inSlot(5, 100)), rootShift) // slot 5 moves down: 15 inline + 2
	require.Equal(t, uint32(1)<<5, root.childMap)
	root = insert(root, lineWithHash(101, inSlot(5, 101)), rootShift) // 15 inline + 3
	root = remove(root, inSlot(5, 101), "o101", "S", rootShift)       // 15 + 2: still one too many
	checkTrie(t, root)
	assert.Equal(t, uint32(1)<<5, root.childMap, "a child whose lines do not fit stays")
	root = remove(root, inSlot(5, 100), "o100", "S", rootShift) // 15 + 1 fit
	lines := checkTrie(t, root)
	assert.Zero(t, root.childMap, "a child whose lines fit is taken back inline")
	assert.Equal(t, uint32(nodeCapacity), root.count)
	assert.Len(t, lines, nodeCapacity)
}

func TestTrieCollisionNodeHoldsAnyNumberOfLines(t *testing.T) {
	var root *lineNode
	const n = 3 * nodeCapacity
	for i := range n {
		root = insert(root, lineWithHash(i, 0xfeed), rootShift)
	}
	lines := checkTrie(t, root)
	require.Len(t, lines, n)
	c := root
	for len(c.children) > 0 {
		c = c.children[0]
	}
	assert.Equal(t, uint32(n), c.count, "all lines of one hash in one collision node")
	for i := range n {
		a, ok := lookup(root, 0xfeed, fmt.Sprintf("o%d", i), "S")
		require.True(t, ok, "lookup of line %d of %d with one hash", i, n)
		assert.Equal(t, i+1, a.line.Qty)
	}
	_, ok := lookup(root, 0xfeed, "o1", "T")
	assert.False(t, ok, "same hash and order id, other sku")
	_, ok = lookup(root, 0xfeee, "o1", "S")
	assert.False(t, ok, "same key, other hash")
}

func TestLineRunEncoding(t *testing.T) {
	lines := []allocation{
		{line: OrderLine{OrderID: "a", SKU: "B", Qty: 1}, seq: 1, hash: 1},
		{line: OrderLine{OrderID: string(make([]byte, 300)), SKU: "LONG-SKU", Qty: MaxQty}, seq: 1 << 40, hash: 1<<64 - 1},
		{line: OrderLine{OrderID: "", SKU: "", Qty: 0}, seq: 127, hash: 0},
		{line: OrderLine{OrderID: "ü", SKU: "ß", Qty: 128}, seq: 128, hash: 0x8080_8080_8080_8080},
	}
	var r lineRun
	for _, a := range lines {
		r = r.with(a)
	}
	require.Equal(t, len(lines), r.n)
	for i, a := range lines {
		assert.Equal(t, a, r.at(i), "line %d", i)
		assert.True(t, r.is(i, a.hash, a.line.OrderID, a.line.SKU), "is(%d)", i)
		assert.False(t, r.is(i, a.hash+1, a.line.OrderID, a.line.SKU), "is(%d) with another hash", i)
		assert.False(t, r.is(i, a.hash, a.line.OrderID+"x", a.line.SKU), "is(%d) with another order id", i)
		assert.False(t, r.is(i, a.hash, a.line.OrderID, a.line.SKU+"x"), "is(%d) with another sku", i)
	}
	for i := range lines {
		w := r.without(i)
		want := slices.Delete(slices.Clone(lines), i, i+1)
		require.Equal(t, len(want), w.n)
		for j, a := range want {
			assert.Equal(t, a, w.at(j), "line %d after removing line %d", j, i)
		}
	}
	odd, even := r.partition(func(hash uint64) bool { return hash%2 == 1 })
	assert.Equal(t, lineRun{}.with(lines[0]).with(lines[1]), odd, "lines with odd hashes")
	assert.Equal(t, lineRun{}.with(lines[2]).with(lines[3]), even, "lines with even hashes")
	assert.Equal(t, r, odd.appended(even), "partitions appended")
}

func TestKeyHashSpreads(t *testing.T) {
	seen := make(map[uint64]string)
	add := func(orderID, sku string) {
		key := fmt.Sprintf("(%q, %q)", orderID, sku)
		h := keyHash(orderID, sku)
		if other, dup := seen[h]; dup {
			t.Fatalf("keyHash%s = keyHash%s = %#x: distinct keys must get distinct hashes", key, other, h)
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

func TestKeyHashFillsEverySlot(t *testing.T) {
	// Slots are taken from the top of the hash down; sequential ids must spread over all of them
	// at every level, or the trie would grow deep and narrow.
	for shift := rootShift; shift >= 0; shift -= levelBits {
		var used uint32
		for i := range 200 {
			used |= 1 << chunk(keyHash(fmt.Sprintf("order-%d", i), "SKU"), shift)
		}
		assert.Equal(t, uint32(1<<(1<<levelBits)-1), used, "slots used at shift %d", shift)
	}
}

// TestBatchKeepsLinesInTheTrie checks that Batch hashes keys as lookup expects, through the
// trie's own checks, with copies.
func TestBatchKeepsLinesInTheTrie(t *testing.T) {
	b := NewBatch("b1", "SKU", 1_000_000, time.Time{})
	for i := range 2000 {
		b.Allocate(OrderLine{OrderID: fmt.Sprintf("order-%d", i), SKU: "SKU", Qty: 1 + i%7})
	}
	c := *b
	for i := 0; i < 2000; i += 3 {
		c.Deallocate(OrderLine{OrderID: fmt.Sprintf("order-%d", i), SKU: "SKU", Qty: 1 + i%7})
	}
	for _, v := range []struct {
		name  string
		batch *Batch
	}{{"original", b}, {"copy", &c}} {
		lines := checkTrie(t, v.batch.lines)
		assert.Len(t, lines, v.batch.count, "%s: lines in the trie", v.name)
		total := 0
		for _, a := range lines {
			assert.Equal(t, keyHash(a.line.OrderID, a.line.SKU), a.hash, "%s: hash of %+v", v.name, a.line)
			total += a.line.Qty
		}
		assert.Equal(t, v.batch.allocated, total, "%s: allocated quantity", v.name)
	}
}

func TestTrieRemoveDropsAnEmptiedChild(t *testing.T) {
	// The root holds a line in every slot but 5, and slot 5 has a child with one line that did
	// not fit inline when it was left alone; then the inline lines go, and last the child's.
	var root *lineNode
	for s := range nodeCapacity {
		root = insert(root, lineWithHash(s, inSlot(s, s)), rootShift)
	}
	root = insert(root, lineWithHash(100, inSlot(5, 100)), rootShift) // slot 5 moves down
	root = insert(root, lineWithHash(101, inSlot(3, 101)), rootShift) // 16 inline again
	root = remove(root, inSlot(5, 100), "o100", "S", rootShift)
	require.Equal(t, uint32(1)<<5, root.childMap, "16 inline and a child of one line")
	for s := range nodeCapacity {
		if s != 5 {
			root = remove(root, inSlot(s, s), fmt.Sprintf("o%d", s), "S", rootShift)
		}
	}
	checkTrie(t, root)
	require.Equal(t, uint32(1), root.count, "one line left inline")
	require.Equal(t, uint32(1)<<5, root.childMap, "and the child")

	withLine := remove(root, inSlot(5, 5), "o5", "S", rootShift)
	assert.Len(t, checkTrie(t, withLine), 1, "the line of slot 3 is left")
	assert.Zero(t, withLine.childMap, "an emptied child is dropped")

	root = remove(root, inSlot(3, 101), "o101", "S", rootShift)
	require.Zero(t, root.count)
	assert.Nil(t, remove(root, inSlot(5, 5), "o5", "S", rootShift), "a node with nothing left is nil")
}

func TestTrieSubNodeOfAFullSlotHoldsItsLinesInline(t *testing.T) {
	var root *lineNode
	for i := range nodeCapacity {
		root = insert(root, lineWithHash(i, inSlot(7, i)), rootShift)
	}
	root = insert(root, lineWithHash(100, inSlot(2, 100)), rootShift)
	checkTrie(t, root)
	require.Equal(t, uint32(1)<<7, root.childMap, "the full slot moves down")
	assert.Equal(t, uint32(nodeCapacity), root.children[0].count, "the sub-node keeps all its lines inline")
	assert.Zero(t, root.children[0].childMap, "the sub-node has room for all of them")
}

// TestLineRunAllocations pins the allocations of the run operations on the hot path: adding a
// line is one string, moving a slot down two.
func TestLineRunAllocations(t *testing.T) {
	var r lineRun
	for i := range nodeCapacity {
		r = r.with(lineWithHash(i, inSlot(i%3, i)))
	}
	a := lineWithHash(99, 1<<63|99)
	a.seq = 1 << 62 // the longest uvarints a line can have
	a.line.Qty = MaxQty
	assert.Equal(t, 1.0, testing.AllocsPerRun(10, func() { r.with(a) }), "allocations of with")
	assert.Equal(t, 2.0, testing.AllocsPerRun(10, func() {
		r.partition(func(hash uint64) bool { return chunk(hash, rootShift) == 1 })
	}), "allocations of partition")
	full := r.with(a) // the most lines pushDown partitions
	for _, side := range []bool{true, false} {
		assert.Equal(t, 1.0, testing.AllocsPerRun(10, func() {
			full.partition(func(uint64) bool { return side })
		}), "allocations of partition with every line on the %v side", side)
	}
}
