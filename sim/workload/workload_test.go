package workload_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/sim/workload"
)

// spec is the simulator's default workload (sim.Default): 10 skus with Zipf popularity, 25% more
// demand than stock, stock sized for 4000 orders.
func spec() workload.Spec {
	return workload.Spec{
		Seed: 42, SKUs: 10, BatchesPerSKU: 3, WarehouseShare: 0.5, ETASpread: 30 * 24 * time.Hour,
		BatchQty: workload.Range{Min: 50, Max: 500}, OrderQty: workload.Range{Min: 1, Max: 10},
		Demand: 1.25, DemandBasis: 4000, ZipfS: 1.2,
	}
}

// hotSKU is the figures' workload (sim.HotSKU): one batch of 500 in the warehouse, orders of 1.
func hotSKU() workload.Spec {
	return workload.Spec{
		Seed: 42, SKUs: 1, BatchesPerSKU: 1, WarehouseShare: 1, ETASpread: 30 * 24 * time.Hour,
		BatchQty: workload.Range{Min: 500, Max: 500}, OrderQty: workload.Range{Min: 1, Max: 1},
		Demand: -1, DemandBasis: 1000,
	}
}

func plan(t *testing.T, s workload.Spec) *workload.Plan {
	t.Helper()
	p, err := workload.NewPlan(s)
	require.NoError(t, err, "NewPlan(%+v)", s)
	return p
}

func TestSameSeedSamePlan(t *testing.T) {
	s := spec()
	a, b := plan(t, s), plan(t, s)
	assert.Equal(t, a.Digest(1, 500), b.Digest(1, 500), "same seed, same plan digest")
	assert.Equal(t, a.Batches, b.Batches)

	s.Seed++
	c := plan(t, s)
	assert.NotEqual(t, a.Digest(1, 500), c.Digest(1, 500), "another seed, another plan")
}

func TestStreamsReplayAndDiffer(t *testing.T) {
	p := plan(t, spec())
	s1, s2, other := p.Stream(0), p.Stream(0), p.Stream(1)
	for i := range 200 {
		a, b, c := s1.Next(), s2.Next(), other.Next()
		require.Equal(t, a, b, "order %d of two streams 0", i)
		assert.Equal(t, "o0-", a.ID[:3])
		assert.Equal(t, "o1-", c.ID[:3])
		assert.Equal(t, i+1, a.Seq)
	}
}

func TestStockIsScaledToDemand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		demand float64
	}{{"more demand than stock", 1.25}, {"stock to spare", 0.5}, {"exactly enough", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			s.Demand, s.DemandBasis, s.OrderQty = tc.demand, 10_000, workload.Range{Min: 1, Max: 9}
			p := plan(t, s)
			perSKU := map[string]int{}
			total := 0
			for _, b := range p.Batches {
				perSKU[b.SKU] += b.Qty
				total += b.Qty
			}
			want := 10_000 * 5 / tc.demand // orders × mean qty / ratio
			assert.InDelta(t, want, total, float64(len(p.SKUs)), "total stock")
			for i, sku := range p.SKUs {
				assert.InDelta(t, want*p.Share[i], perSKU[sku], 1, "stock of %s follows its share of demand", sku)
			}
		})
	}
}

func TestNegativeDemandKeepsBatchQuantities(t *testing.T) {
	s := spec()
	s.Demand, s.BatchQty = -1, workload.Range{Min: 7, Max: 9}
	for _, b := range plan(t, s).Batches {
		assert.True(t, b.Qty >= 7 && b.Qty <= 9, "batch %s qty %d", b.Ref, b.Qty)
	}
}

func TestWorkloadKnobs(t *testing.T) {
	s := spec()
	s.SKUs, s.BatchesPerSKU, s.WarehouseShare, s.ETASpread = 5, 4, 0, 48*time.Hour
	s.OrderQty = workload.Range{Min: 3, Max: 4}
	p := plan(t, s)
	require.Len(t, p.SKUs, 5)
	require.Len(t, p.Batches, 20)
	refs := map[string]bool{}
	for _, b := range p.Batches {
		assert.False(t, b.ETA.IsZero(), "no warehouse stock with a warehouse share of 0: %s", b.Ref)
		assert.False(t, refs[b.Ref], "batch references are unique: %s", b.Ref)
		refs[b.Ref] = true
	}
	first := p.Batches[0].ETA
	for _, b := range p.Batches {
		assert.LessOrEqual(t, b.ETA.Sub(first).Abs(), 48*time.Hour)
	}
	st := p.Stream(0)
	for range 100 {
		o := st.Next()
		assert.True(t, o.Qty == 3 || o.Qty == 4, "order qty %d", o.Qty)
	}

	s.WarehouseShare = 1
	for _, b := range plan(t, s).Batches {
		assert.True(t, b.ETA.IsZero(), "all in the warehouse with a warehouse share of 1")
	}
}

func TestZipfMakesHotSKUs(t *testing.T) {
	count := func(zipfS float64) map[string]int {
		s := spec()
		s.ZipfS = zipfS
		st, n := plan(t, s).Stream(0), map[string]int{}
		for range 20_000 {
			n[st.Next().SKU]++
		}
		return n
	}
	zipf, uniform := count(1.2), count(0)
	hottest := func(n map[string]int) int {
		m := 0
		for _, c := range n {
			m = max(m, c)
		}
		return m
	}
	assert.Greater(t, hottest(zipf), 6000, "the hottest zipf sku takes a third or more of orders")
	assert.Less(t, hottest(uniform), 2400, "uniform: about a tenth each")

	p := plan(t, spec())
	sum := 0.0
	for _, s := range p.Share {
		sum += s
	}
	assert.InDelta(t, 1, sum, 1e-9)
	assert.Greater(t, p.Share[0], p.Share[1])
}

func TestHotSKUPlan(t *testing.T) {
	p := plan(t, hotSKU())
	require.Len(t, p.Batches, 1)
	assert.Equal(t, 500, p.Batches[0].Qty)
	assert.True(t, p.Batches[0].ETA.IsZero(), "in the warehouse")
	s := p.Stream(0)
	for range 1000 {
		o := s.Next()
		assert.Equal(t, p.SKUs[0], o.SKU)
		assert.Equal(t, 1, o.Qty)
		assert.Equal(t, workload.NoDefect, o.Bad)
	}
}

func TestBadInputSendsEveryDefectInTurn(t *testing.T) {
	s := hotSKU()
	clean := plan(t, s)
	s.BadInput = 0.3
	p := plan(t, s)
	st := p.Stream(0)
	var defects []workload.Defect
	for range 200 {
		o := st.Next()
		id, sku, qty := o.Args()
		switch o.Bad {
		case workload.NoDefect:
			assert.Equal(t, []any{o.ID, o.SKU, o.Qty}, []any{id, sku, qty}, "a good order is sent as it is")
			continue
		case workload.ZeroQty:
			assert.Zero(t, qty)
		case workload.NegativeQty:
			assert.Negative(t, qty)
		case workload.HugeQty:
			assert.Greater(t, qty, domain.MaxQty)
		case workload.EmptyOrderID:
			assert.Empty(t, id)
		case workload.EmptySKU:
			assert.Empty(t, sku)
		case workload.UnknownSKU:
			assert.Equal(t, workload.UnknownSKUName, sku)
		}
		defects = append(defects, o.Bad)
	}
	assert.InDelta(t, 60, len(defects), 25, "about 30%% of 200")
	assert.Equal(t, []workload.Defect{workload.ZeroQty, workload.NegativeQty, workload.HugeQty, workload.EmptyOrderID, workload.EmptySKU, workload.UnknownSKU, workload.ZeroQty}, defects[:7], "in turn")
	assert.Equal(t, "empty-order-id", workload.EmptyOrderID.String())
	assert.Equal(t, "defect(9)", workload.Defect(9).String())
	text, err := workload.HugeQty.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "huge-qty", string(text))
	assert.Equal(t, clean.Digest(1, 10), clean.Digest(1, 10))
	assert.NotEqual(t, clean.Digest(1, 200), p.Digest(1, 200), "bad input changes the plan")
}

// A spec no plan can be drawn from is refused with ErrSpec and the field's name, before gofakeit
// sees it (a seed of 0 would be random, no batches would loop forever scaling stock).
func TestNewPlanRefusesABadSpec(t *testing.T) {
	for _, tc := range []struct {
		field string
		edit  func(*workload.Spec)
	}{
		{"Seed", func(s *workload.Spec) { s.Seed = 0 }},
		{"SKUs", func(s *workload.Spec) { s.SKUs = 0 }},
		{"BatchesPerSKU", func(s *workload.Spec) { s.BatchesPerSKU = 0 }},
		{"WarehouseShare", func(s *workload.Spec) { s.WarehouseShare = math.NaN() }},
		{"WarehouseShare", func(s *workload.Spec) { s.WarehouseShare = 1.5 }},
		{"ETASpread", func(s *workload.Spec) { s.ETASpread = time.Minute }},
		{"BatchQty", func(s *workload.Spec) { s.BatchQty = workload.Range{Min: 5, Max: 1} }},
		{"BatchQty", func(s *workload.Spec) { s.BatchQty = workload.Range{} }},
		{"OrderQty", func(s *workload.Spec) { s.OrderQty = workload.Range{Min: 0, Max: 1} }},
		{"Demand", func(s *workload.Spec) { s.Demand = 0 }},
		{"Demand", func(s *workload.Spec) { s.Demand = math.Inf(1) }},
		{"DemandBasis", func(s *workload.Spec) { s.DemandBasis = -1 }},
		{"ZipfS", func(s *workload.Spec) { s.ZipfS = 1 }},
		{"BadInput", func(s *workload.Spec) { s.BadInput = 1.01 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			s := spec()
			tc.edit(&s)
			p, err := workload.NewPlan(s)
			require.ErrorIs(t, err, workload.ErrSpec, "NewPlan(%+v)", s)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), ": "+tc.field+": ")
		})
	}
	s := hotSKU()
	s.ETASpread = 0
	assert.NoError(t, s.Validate(), "no ETA spread needed when every batch is in the warehouse")
	s = spec()
	s.Demand, s.BatchQty = -1, workload.Range{}
	assert.NoError(t, s.Validate(), "empty batches are fine when nothing scales them")
}
