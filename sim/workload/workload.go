// Package workload is the simulator's seeded plan: the products and batches a run starts with,
// and the streams of orders its clients send, drawn with gofakeit from one seed. It knows nothing
// of load, dispatch or the stack: the same Spec gives the same plan, batch for batch and order for
// order, and each stream replays on its own.
package workload

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/brianvoe/gofakeit/v6"

	"github.com/stockbus/stockbus/domain"
)

// planEpoch is the "now" of every plan: ETAs are drawn after it, never from the clock, so the
// same seed gives the same batches on any day.
var planEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// BatchSpec is a batch the plan adds to the store before the first order.
type BatchSpec struct {
	Ref string
	SKU string
	Qty int
	ETA time.Time // zero: in the warehouse
}

// Order is one order of the workload. Its ID is "o<stream>-<seq>", unique in a plan.
type Order struct {
	ID     string
	SKU    string
	Qty    int
	Stream int    // the generator that made it
	Seq    int    // from 1 within its stream
	Bad    Defect // an invalid order (Spec.BadInput): Args sends it with this defect
}

// Defect is what is wrong with an invalid order.
type Defect uint8

// Defects of invalid orders, taken in turn.
const (
	NoDefect     Defect = iota
	ZeroQty             // quantity 0
	NegativeQty         // quantity -1
	HugeQty             // quantity domain.MaxQty+1
	EmptyOrderID        // order id ""
	EmptySKU            // sku ""
	UnknownSKU          // a sku no product has
	numDefects
)

var defectNames = [...]string{"", "zero-qty", "negative-qty", "huge-qty", "empty-order-id", "empty-sku", "unknown-sku"}

// String names the defect as reports print it ("zero-qty"), "" for NoDefect.
func (d Defect) String() string {
	if int(d) < len(defectNames) {
		return defectNames[d]
	}
	return "defect(" + strconv.Itoa(int(d)) + ")"
}

// MarshalText makes defects readable in JSON.
func (d Defect) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnknownSKUName is the sku an UnknownSKU order names.
const UnknownSKUName = "NO-SUCH-SKU"

// Args are the order id, sku and quantity the order is sent with: its own, or with its defect.
func (o Order) Args() (orderID, sku string, qty int) {
	orderID, sku, qty = o.ID, o.SKU, o.Qty
	switch o.Bad {
	case ZeroQty:
		qty = 0
	case NegativeQty:
		qty = -1
	case HugeQty:
		qty = domain.MaxQty + 1
	case EmptyOrderID:
		orderID = ""
	case EmptySKU:
		sku = ""
	case UnknownSKU:
		sku = UnknownSKUName
	}
	return orderID, sku, qty
}

// Plan is a seeded workload: the products and batches to start with, and the streams of orders
// that clients send. The same Spec gives the same Plan, batch for batch and order for order.
type Plan struct {
	SKUs    []string
	Batches []BatchSpec
	// Share is each sku's expected share of orders, in the order of SKUs.
	Share []float64

	cfg        Spec
	cumulative []float64 // running sums of Share, for drawing a sku
}

// NewPlan builds the plan of spec. A spec that Validate refuses gives an error wrapping ErrSpec
// and no plan.
func NewPlan(spec Spec) (*Plan, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	cfg := spec
	f := gofakeit.NewUnlocked(cfg.Seed)
	p := &Plan{cfg: cfg, Share: popularity(cfg)}
	sum := 0.0
	for _, s := range p.Share {
		sum += s
		p.cumulative = append(p.cumulative, sum)
	}
	taken := map[string]bool{}
	for i := range cfg.SKUs {
		sku := strings.ToUpper(f.Adjective() + "-" + f.NounConcrete())
		sku = strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return '-'
		}, sku)
		if taken[sku] {
			sku += "-" + strconv.Itoa(i)
		}
		taken[sku] = true
		p.SKUs = append(p.SKUs, sku)
	}
	meanQty := cfg.OrderQty.mean()
	for i, sku := range p.SKUs {
		raw := make([]int, cfg.BatchesPerSKU)
		total := 0
		for j := range raw {
			raw[j] = f.IntRange(cfg.BatchQty.Min, cfg.BatchQty.Max)
			total += raw[j]
		}
		if cfg.Demand > 0 {
			supply := math.Ceil(cfg.DemandBasis * p.Share[i] * meanQty / cfg.Demand)
			raw = scale(raw, total, int(supply))
		}
		for j, qty := range raw {
			var eta time.Time
			if f.Float64Range(0, 1) >= cfg.WarehouseShare { // gofakeit's Float64 spans all of float64
				eta = f.DateRange(planEpoch.Add(time.Hour), planEpoch.Add(cfg.ETASpread)).UTC()
			}
			p.Batches = append(p.Batches, BatchSpec{Ref: fmt.Sprintf("%s-%d", sku, j+1), SKU: sku, Qty: qty, ETA: eta})
		}
	}
	return p, nil
}

// scale spreads want over the parts in proportion to raw (whose sum is total), to the unit.
func scale(raw []int, total, want int) []int {
	out := make([]int, len(raw))
	if total == 0 {
		raw, total = make([]int, len(raw)), len(raw)
		for i := range raw {
			raw[i] = 1
		}
	}
	given := 0
	for i, r := range raw {
		out[i] = int(float64(want) * float64(r) / float64(total))
		given += out[i]
	}
	for i := 0; given < want; i = (i + 1) % len(out) {
		out[i]++
		given++
	}
	return out
}

// popularity is each sku's expected share of orders.
func popularity(cfg Spec) []float64 {
	share := make([]float64, cfg.SKUs)
	sum := 0.0
	for k := range share {
		share[k] = 1
		if cfg.ZipfS > 0 {
			share[k] = math.Pow(float64(k+1), -cfg.ZipfS) // Zipf's law, as math/rand.Zipf with v = 1
		}
		sum += share[k]
	}
	for k := range share {
		share[k] /= sum
	}
	return share
}

// Stream returns the generator of stream i. Each stream has its own seed, derived from the plan's,
// so streams can run on different goroutines and still replay.
func (p *Plan) Stream(i int) *Stream {
	f := gofakeit.NewUnlocked(streamSeed(p.cfg.Seed, i))
	return &Stream{plan: p, f: f, id: i, prefix: "o" + strconv.Itoa(i) + "-"}
}

func streamSeed(seed int64, i int) int64 {
	x := uint64(seed) + uint64(i+1)*0x9e3779b97f4a7c15 // splitmix64
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	if s := int64(x >> 1); s != 0 {
		return s
	}
	return 1
}

// Stream generates orders. It is not safe for concurrent use.
type Stream struct {
	plan   *Plan
	f      *gofakeit.Faker
	id     int
	seq    int
	bad    int // invalid orders so far
	prefix string
	buf    []byte
}

// Next returns the stream's next order.
func (s *Stream) Next() Order {
	s.seq++
	// Inverse transform over the skus' shares: one draw and a binary search, the same
	// distribution as math/rand.Zipf at a fraction of its cost.
	k := min(sort.SearchFloat64s(s.plan.cumulative, s.f.Rand.Float64()), len(s.plan.SKUs)-1)
	q := s.plan.cfg.OrderQty
	qty := q.Min
	if q.Max > q.Min {
		qty += s.f.Rand.Intn(q.Max - q.Min + 1)
	}
	s.buf = strconv.AppendInt(append(s.buf[:0], s.prefix...), int64(s.seq), 10)
	o := Order{ID: string(s.buf), SKU: s.plan.SKUs[k], Qty: qty, Stream: s.id, Seq: s.seq}
	if share := s.plan.cfg.BadInput; share > 0 && s.f.Rand.Float64() < share {
		s.bad++
		o.Bad = Defect(1 + (s.bad-1)%int(numDefects-1))
	}
	return o
}

// Digest is a hash of the plan: its batches and the first perStream orders of each of streams
// streams. Two plans with the same digest send the same orders.
func (p *Plan) Digest(streams, perStream int) string {
	h := sha256.New()
	var n [8]byte
	put := func(s string, v int64) {
		h.Write([]byte(s))
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	for _, b := range p.Batches {
		put(b.Ref, int64(b.Qty))
		put(b.SKU, b.ETA.UnixNano())
	}
	for i := range streams {
		s := p.Stream(i)
		for range perStream {
			o := s.Next()
			put(o.ID, int64(o.Qty))
			put(o.SKU, int64(o.Bad))
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}
