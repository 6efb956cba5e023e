package domain

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"slices"
	"strings"
)

// The lines allocated to a batch are kept in a persistent hash trie keyed by
// keyHash(OrderID, SKU). Nothing reachable from a root is ever modified: a change copies the
// nodes on the path from the root to the change and returns a new root. So a copy of a Batch
// shares all its lines in O(1), and changing one copy never changes another.
//
// The shape is chosen for what a unit of work does: copy a product, look up one order, add one
// line, commit. With a batch of a million lines, what that costs is cache misses, the memory the
// change allocates, and the garbage collector: on every cycle it visits each live object of every
// stored batch, and while it runs, every pointer a change copies costs a write barrier. Hence:
//
//   - nodes are wide (16 slots), so a path is four or five nodes where a binary tree has twenty,
//     and a node and its child pointers are one allocation;
//   - a node keeps up to nodeCapacity lines inline, whatever their slots, and only when it
//     overflows does its fullest slot move down into a sub-node, so most lines live in nodes
//     that hold several of them rather than in one small node per line or per pair of lines;
//   - the inline lines of a node are one string without pointers (see lineRun), which the
//     collector marks without scanning it and which takes a line's key and about 15 bytes more;
//   - a node keeps one byte of the hash of each inline line, so that looking up an order that
//     is not there, the usual case, reads nothing but the nodes on its path.

const (
	levelBits    = 4                // hash bits consumed per level: 16 slots a node
	levelMask    = 1<<levelBits - 1 // extracts one level's chunk of the hash
	rootShift    = 64 - levelBits   // the root sorts lines by the top bits of the hash, its children by the next ones
	nodeCapacity = 1 << levelBits   // most lines a node keeps inline; no fewer than its slots (see pushDown)
)

// lineNode is a node of the trie at some shift s >= 0: it sorts lines by their chunk
// (hash >> s) & levelMask. A slot either has a sub-node holding all the lines of its chunk (its
// bit is set in childMap), or holds its lines inline, or is empty.
//
// At a shift s < 0 the hash is used up: such a collision node holds lines whose hashes are all
// equal, any number of them, inline, and has no children.
type lineNode struct {
	childMap uint32
	count    uint32              // how many lines data holds: at most nodeCapacity, unless s < 0
	tags     [nodeCapacity]uint8 // tag of the hash of each inline line, for the first nodeCapacity of them
	data     string              // the inline lines: a lineRun of count lines
	children []*lineNode         // one per bit of childMap, in slot order; none is empty
}

// allocation is an allocated line with what the trie keeps about it.
type allocation struct {
	line OrderLine
	seq  uint64 // allocation order: Lines returns lines by seq
	hash uint64 // keyHash of the line's key
}

// keyHash is FNV-1a over the key (order id, a separator, sku), computed without building the key
// string, then mixed (splitmix64) so that keys differing only in the last byte land in unrelated
// slots at every level.
func keyHash(orderID, sku string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(orderID); i++ {
		h = (h ^ uint64(orderID[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(sku); i++ {
		h = (h ^ uint64(sku[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// chunk returns the slot of hash at shift, which must be >= 0.
func chunk(hash uint64, shift int) int { return int(hash >> shift & levelMask) }

// tag is the byte of a hash that a node keeps for each inline line. Slots are taken from the top
// of the hash, so the low byte still tells apart the lines of one node.
func tag(hash uint64) uint8 { return uint8(hash) }

// index returns where the child of slot s is in n.children, if it has one.
func (n *lineNode) index(s int) (int, bool) {
	bit := uint32(1) << s
	return bits.OnesCount32(n.childMap & (bit - 1)), n.childMap&bit != 0
}

func (n *lineNode) run() lineRun { return lineRun{data: n.data, n: int(n.count)} }

// find returns the index of the key among n's inline lines, if it is there.
func (n *lineNode) find(hash uint64, orderID, sku string) (int, bool) {
	r, t := n.run(), tag(hash)
	for i := range r.n {
		if (i >= nodeCapacity || n.tags[i] == t) && r.is(i, hash, orderID, sku) {
			return i, true
		}
	}
	return 0, false
}

// lookup returns the line of the trie n with the key, if there is one.
func lookup(n *lineNode, hash uint64, orderID, sku string) (allocation, bool) {
	for shift := rootShift; n != nil; shift -= levelBits {
		if shift >= 0 {
			if i, ok := n.index(chunk(hash, shift)); ok {
				n = n.children[i]
				continue
			}
		}
		if i, ok := n.find(hash, orderID, sku); ok {
			return n.run().at(i), true
		}
		break
	}
	return allocation{}, false
}

// insert returns a trie at shift holding everything in n (which may be nil) and a. a's key must
// not be in n.
func insert(n *lineNode, a allocation, shift int) *lineNode {
	if n == nil {
		return newNode(0, lineRun{}.with(a), nil).tagged()
	}
	if shift >= 0 {
		s := chunk(a.hash, shift)
		if i, ok := n.index(s); ok {
			return n.withChild(i, insert(n.children[i], a, shift-levelBits))
		}
	}
	run := n.run().with(a)
	if shift >= 0 && run.n > nodeCapacity {
		return pushDown(run, shift, n.childMap, n.children)
	}
	c := newNode(n.childMap, run, n.children)
	c.tags = n.tags
	if i := run.n - 1; i < nodeCapacity {
		c.tags[i] = tag(a.hash)
	}
	return c
}

// build returns a trie at shift holding the lines of run, which holds at most nodeCapacity+1.
func build(run lineRun, shift int) *lineNode {
	if shift >= 0 && run.n > nodeCapacity {
		return pushDown(run, shift, 0, nil)
	}
	return newNode(0, run, nil).tagged()
}

// pushDown returns a node at shift with the children and the lines of run, one more than
// nodeCapacity, but for the lines of run's fullest slot, which move into a new sub-node. As run
// holds more lines than there are slots, that slot holds at least two of them.
func pushDown(run lineRun, shift int, childMap uint32, children []*lineNode) *lineNode {
	var count [1 << levelBits]int
	for i, off := 0, 0; i < run.n; i, off = i+1, run.next(off) {
		count[chunk(run.hash(off), shift)]++
	}
	fullest := 0
	for s := range count {
		if count[s] > count[fullest] {
			fullest = s
		}
	}
	down, rest := run.partition(func(hash uint64) bool { return chunk(hash, shift) == fullest })
	n := newNode(childMap|1<<fullest, rest, nil).tagged()
	i, _ := n.index(fullest)
	copy(n.children, children[:i])
	n.children[i] = build(down, shift-levelBits)
	copy(n.children[i+1:], children[i:])
	return n
}

// withChild returns a copy of n with c as its i-th child.
func (n *lineNode) withChild(i int, c *lineNode) *lineNode {
	d := newNode(n.childMap, n.run(), n.children)
	d.tags = n.tags
	d.children[i] = c
	return d
}

// remove returns the trie at shift n without the key, which must be in n; nil when nothing is left.
func remove(n *lineNode, hash uint64, orderID, sku string, shift int) *lineNode {
	if shift >= 0 {
		s := chunk(hash, shift)
		if i, ok := n.index(s); ok {
			return n.removeBelow(s, i, hash, orderID, sku, shift)
		}
	}
	i, _ := n.find(hash, orderID, sku)
	run := n.run().without(i)
	if run.n == 0 && len(n.children) == 0 {
		return nil
	}
	return newNode(n.childMap, run, n.children).tagged()
}

// removeBelow removes the key from n's i-th child, that of slot s.
func (n *lineNode) removeBelow(s, i int, hash uint64, orderID, sku string, shift int) *lineNode {
	sub := remove(n.children[i], hash, orderID, sku, shift-levelBits)
	if sub != nil && (len(sub.children) > 0 || n.count+sub.count > nodeCapacity) {
		return n.withChild(i, sub)
	}
	// The child is gone, or its lines fit here now: take them back inline, so that a trie that
	// shrinks does not keep a chain of nearly empty nodes.
	run := n.run()
	if sub != nil {
		run = run.appended(sub.run())
	}
	if run.n == 0 && len(n.children) == 1 {
		return nil
	}
	d := newNode(n.childMap&^(1<<s), run, nil).tagged()
	copy(d.children, n.children[:i])
	copy(d.children[i:], n.children[i+1:])
	return d
}

// newNode returns a node with the inline lines of run and room for one child per bit of
// childMap, filled from children if that is not nil. The children are allocated together with
// the node, so that each node a change copies is one allocation. Its tags are left to the caller.
func newNode(childMap uint32, run lineRun, children []*lineNode) *lineNode {
	var n *lineNode
	switch k := bits.OnesCount32(childMap); {
	case k == 0:
		n = new(lineNode)
	case k <= 2:
		c := new(struct {
			lineNode
			children [2]*lineNode
		})
		n = &c.lineNode
		n.children = c.children[:k]
	case k <= 4:
		c := new(struct {
			lineNode
			children [4]*lineNode
		})
		n = &c.lineNode
		n.children = c.children[:k]
	case k <= 8:
		c := new(struct {
			lineNode
			children [8]*lineNode
		})
		n = &c.lineNode
		n.children = c.children[:k]
	default:
		c := new(struct {
			lineNode
			children [1 << levelBits]*lineNode
		})
		n = &c.lineNode
		n.children = c.children[:k]
	}
	n.childMap, n.count, n.data = childMap, uint32(run.n), run.data
	copy(n.children, children)
	return n
}

// tagged sets the tags of n from its inline lines and returns n.
func (n *lineNode) tagged() *lineNode {
	r := n.run()
	for i, off := 0, 0; i < min(r.n, nodeCapacity); i, off = i+1, r.next(off) {
		n.tags[i] = tag(r.hash(off))
	}
	return n
}

// walk calls fn for every line of the trie n, in no particular order.
func walk(n *lineNode, fn func(allocation)) {
	if n == nil {
		return
	}
	r := n.run()
	for i, off := 0, 0; i < r.n; i++ {
		var a allocation
		a, off = r.decode(off)
		fn(a)
	}
	for _, c := range n.children {
		walk(c, fn)
	}
}

// linesBySeq returns the lines of the trie n, which holds count lines, oldest allocation first.
func linesBySeq(n *lineNode, count int) []OrderLine {
	all := make([]allocation, 0, count)
	walk(n, func(a allocation) { all = append(all, a) })
	slices.SortFunc(all, func(a, b allocation) int { return cmp.Compare(a.seq, b.seq) })
	lines := make([]OrderLine, len(all))
	for i, a := range all {
		lines[i] = a.line
	}
	return lines
}

// lineRun is n lines in data, a string, so that they are one object without pointers: the
// garbage collector marks it without scanning it, and copying it needs no write barriers. Each
// line follows the previous one, encoded as its hash (8 bytes, little endian), its seq, quantity,
// order id length and sku length (uvarints), then its order id and its sku. The encoding of a
// line does not depend on where it is, so runs are cut and joined by copying bytes.
//
// A lineRun is never changed: the methods that change it return a new one.
type lineRun struct {
	data string
	n    int
}

// hash returns the hash of the line that starts at off.
func (r lineRun) hash(off int) uint64 {
	return binary.LittleEndian.Uint64([]byte(r.data[off : off+8]))
}

// decode returns the line that starts at off and where the next one starts. The line's strings
// share r.data.
func (r lineRun) decode(off int) (allocation, int) {
	a := allocation{hash: r.hash(off)}
	var qty, idLen, skuLen uint64
	a.seq, off = r.uvarint(off + 8)
	qty, off = r.uvarint(off)
	idLen, off = r.uvarint(off)
	skuLen, off = r.uvarint(off)
	idEnd, end := off+int(idLen), off+int(idLen)+int(skuLen)
	a.line = OrderLine{OrderID: r.data[off:idEnd], SKU: r.data[idEnd:end], Qty: int(qty)}
	return a, end
}

// next returns where the line after the one that starts at off starts.
func (r lineRun) next(off int) int {
	_, off = r.uvarint(off + 8) // seq
	_, off = r.uvarint(off)     // quantity
	idLen, off := r.uvarint(off)
	skuLen, off := r.uvarint(off)
	return off + int(idLen) + int(skuLen)
}

// uvarint decodes the uvarint at off, as binary.Uvarint does, and returns where it ends.
func (r lineRun) uvarint(off int) (uint64, int) {
	var v uint64
	for shift := 0; ; shift += 7 {
		b := r.data[off]
		off++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, off
		}
	}
}

// at returns line i.
func (r lineRun) at(i int) allocation {
	off := 0
	for range i {
		off = r.next(off)
	}
	a, _ := r.decode(off)
	return a
}

// is reports whether line i has the key.
func (r lineRun) is(i int, hash uint64, orderID, sku string) bool {
	a := r.at(i)
	return a.hash == hash && a.line.OrderID == orderID && a.line.SKU == sku
}

// with returns r with a added as its last line.
func (r lineRun) with(a allocation) lineRun {
	var head [8 + 4*binary.MaxVarintLen64]byte
	binary.LittleEndian.PutUint64(head[:], a.hash)
	h := binary.AppendUvarint(head[:8], a.seq)
	h = binary.AppendUvarint(h, uint64(a.line.Qty))
	h = binary.AppendUvarint(h, uint64(len(a.line.OrderID)))
	h = binary.AppendUvarint(h, uint64(len(a.line.SKU)))
	var b strings.Builder
	b.Grow(len(r.data) + len(h) + len(a.line.OrderID) + len(a.line.SKU))
	b.WriteString(r.data)
	b.Write(h)
	b.WriteString(a.line.OrderID)
	b.WriteString(a.line.SKU)
	return lineRun{data: b.String(), n: r.n + 1}
}

// appended returns r followed by the lines of s.
func (r lineRun) appended(s lineRun) lineRun {
	return lineRun{data: r.data + s.data, n: r.n + s.n}
}

// without returns r without line i.
func (r lineRun) without(i int) lineRun {
	from := 0
	for range i {
		from = r.next(from)
	}
	return lineRun{data: r.data[:from] + r.data[r.next(from):], n: r.n - 1}
}

// partition returns the lines of r whose hash in accepts and the others, in their order.
func (r lineRun) partition(in func(hash uint64) bool) (yes, no lineRun) {
	yesLines := make([]string, 0, nodeCapacity+1)
	noLines := make([]string, 0, nodeCapacity+1)
	for i, off := 0, 0; i < r.n; i, off = i+1, r.next(off) {
		if line := r.data[off:r.next(off)]; in(r.hash(off)) {
			yesLines = append(yesLines, line)
		} else {
			noLines = append(noLines, line)
		}
	}
	return lineRun{data: strings.Join(yesLines, ""), n: len(yesLines)},
		lineRun{data: strings.Join(noLines, ""), n: len(noLines)}
}
