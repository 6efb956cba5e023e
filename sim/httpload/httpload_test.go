package httpload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/sim/load"
	"github.com/stockbus/stockbus/sim/workload"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fleet is n API instances as cmd/api wires them on the fakes, on real sockets, sharing one store
// and one mailer (as instances share a database and a mail server), each with its own unit of
// work, bus and meter.
type fleet struct {
	store  *fakes.Store
	mailer *fakes.Mailer
	urls   []string
}

func newFleet(t *testing.T, n int) *fleet {
	t.Helper()
	f := &fleet{store: fakes.NewStore(), mailer: fakes.NewMailer()}
	for i := range n {
		m := httpapi.NewMeter(fmt.Sprintf("api-%d", i))
		uow := service.Bootstrap(f.store, f.mailer, service.WithRetries(service.Unlimited),
			service.WithBusOptions(service.WithMiddleware(m.Middleware())))
		mux := http.NewServeMux()
		mux.Handle("/", m.Wrap(httpapi.NewHandler(uow)))
		mux.Handle("/stats", m)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, srv.URL)
	}
	return f
}

// allocatedOrders counts the order lines the store's batches hold.
func (f *fleet) allocatedOrders(t *testing.T, plan *workload.Plan) int64 {
	t.Helper()
	var n int64
	for _, b := range plan.Batches {
		p, ok := f.store.Product(b.SKU)
		require.True(t, ok, "product %s", b.SKU)
		batch, ok := p.Batch(b.Ref)
		require.True(t, ok, "batch %s", b.Ref)
		n += int64(len(batch.Lines()))
	}
	return n
}

func newPlan(t *testing.T, orders int) *workload.Plan {
	t.Helper()
	p, err := workload.NewPlan(workload.Spec{Seed: 7, SKUs: 3, BatchesPerSKU: 2, WarehouseShare: 0.5, ETASpread: 48 * time.Hour,
		BatchQty: workload.Range{Min: 10, Max: 50}, OrderQty: workload.Range{Min: 1, Max: 3}, Demand: 1.5,
		DemandBasis: float64(orders), ZipfS: 1.2, BadInput: 0.1})
	require.NoError(t, err)
	return p
}

// invalid counts the orders among the stream's first n that are sent with a defect.
func invalid(plan *workload.Plan, n int) int64 {
	s := plan.Stream(0)
	var bad int64
	for range n {
		if s.Next().Bad != workload.NoDefect {
			bad++
		}
	}
	return bad
}

// TestRunCountsEveryAnswerAgainstTheServers drives two instances over real sockets under both
// models and holds the report to what the servers did: every order answered and counted once,
// the allocations the store holds, one out-of-stock answer per mail, the invalid orders the plan
// sent, and each instance's meter counting exactly the orders sent to it.
func TestRunCountsEveryAnswerAgainstTheServers(t *testing.T) {
	const orders = 300
	for _, tc := range []struct {
		name  string
		model func(c *httpload.Config)
	}{
		{"closed", func(c *httpload.Config) { c.Closed = &load.Closed{Workers: 4, Orders: orders, WarmupOrders: 20} }},
		{"open", func(c *httpload.Config) {
			c.Open = &load.Open{Workers: 4, Backlog: orders, Orders: orders, Rate: 3000, Poisson: true, Seed: 3, WarmupOrders: 20}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, 2)
			plan := newPlan(t, orders)
			cfg := httpload.Config{Targets: f.urls, Plan: plan}
			tc.model(&cfg)
			rep, err := httpload.Run(t.Context(), cfg)
			require.NoError(t, err)

			assert.EqualValues(t, orders, rep.Sent)
			assert.EqualValues(t, orders, rep.Orders.Total(), "every order answered and counted once")
			assert.Zero(t, rep.Dropped, "the backlog holds every arrival")
			assert.Zero(t, rep.Orders.Unknown+rep.Orders.Failed, "%+v", rep.Orders)
			assert.Equal(t, f.allocatedOrders(t, plan), rep.Orders.Allocated, "allocations the store holds")
			assert.EqualValues(t, f.mailer.Len(), rep.Orders.OutOfStock, "one out-of-stock mail per out-of-stock answer")
			assert.Equal(t, invalid(plan, orders), rep.Orders.Invalid, "the plan's invalid orders")
			require.Positive(t, rep.Orders.OutOfStock, "the plan runs out of stock")
			require.Positive(t, rep.Orders.Invalid)
			assert.Equal(t, rep.Measured.Total(), rep.Latency.Count)
			assert.LessOrEqual(t, rep.Measured.Total(), int64(orders-20), "the warm-up is not measured")
			assert.GreaterOrEqual(t, rep.Latency.Max, rep.Service.Max, "latency counts from the intended start, before the pick-up")

			require.Len(t, rep.PerTarget, 2)
			for i, pt := range rep.PerTarget {
				assert.EqualValues(t, orders/2, pt.Total(), "target %d gets every other order", i)
			}
			require.NotNil(t, rep.Server, "stats: %s", rep.StatsError)
			assert.Equal(t, []string{"api-0", "api-1"}, rep.Server.Instances)
			assert.EqualValues(t, orders, rep.Server.Requests.Count, "the servers counted the orders, the seeding taken off")
			assert.EqualValues(t, orders, rep.Server.Dispatch.Count)
			assert.LessOrEqual(t, rep.Server.DispatchShare, 1.0)
			assert.Zero(t, rep.Server.Relayed.Count, "sync: no handler ran outside a request")
		})
	}
}

func TestRunRefusesATargetThatAlreadyHoldsThePlan(t *testing.T) {
	f := newFleet(t, 1)
	plan := newPlan(t, 10)
	cfg := httpload.Config{Targets: f.urls, Plan: plan, Closed: &load.Closed{Workers: 1, Orders: 10}}
	_, err := httpload.Run(t.Context(), cfg)
	require.NoError(t, err)
	_, err = httpload.Run(t.Context(), cfg)
	require.ErrorIs(t, err, httpload.ErrSeed)
	assert.ErrorIs(t, err, domain.ErrDuplicateBatch)
	assert.Contains(t, err.Error(), "fresh API")
}

func TestRunBadConfig(t *testing.T) {
	plan := newPlan(t, 10)
	closed := &load.Closed{Workers: 1, Orders: 10}
	for _, tc := range []struct {
		name string
		cfg  httpload.Config
	}{
		{"no target", httpload.Config{Plan: plan, Closed: closed}},
		{"no plan", httpload.Config{Targets: []string{"http://127.0.0.1:1"}, Closed: closed}},
		{"no model", httpload.Config{Targets: []string{"http://127.0.0.1:1"}, Plan: plan}},
		{"two models", httpload.Config{Targets: []string{"http://127.0.0.1:1"}, Plan: plan, Closed: closed, Open: &load.Open{Workers: 1, Rate: 1}}},
		{"no worker", httpload.Config{Targets: []string{"http://127.0.0.1:1"}, Plan: plan, Closed: &load.Closed{Orders: 1}}},
		{"a bad URL", httpload.Config{Targets: []string{"ftp://x"}, Plan: plan, Closed: closed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := httpload.Run(t.Context(), tc.cfg)
			assert.ErrorIs(t, err, httpload.ErrConfig)
		})
	}
}

// A target whose stats cannot be read: the run still reports every answer, and says why the
// servers' side is missing.
func TestRunBadStatsKeepsTheClientReport(t *testing.T) {
	f := newFleet(t, 1)
	api, err := http.NewRequest(http.MethodGet, f.urls[0], nil)
	require.NoError(t, err)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"instance": "broken", "requests": {"count": 1, "hdr": "garbage"}}`))
			return
		}
		r.URL.Scheme, r.URL.Host, r.RequestURI = api.URL.Scheme, api.URL.Host, ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		_, _ = w.Write(buf.Bytes())
	}))
	defer proxy.Close()
	plan := newPlan(t, 50)
	rep, err := httpload.Run(t.Context(), httpload.Config{Targets: []string{proxy.URL}, Plan: plan, Closed: &load.Closed{Workers: 2, Orders: 50}})
	require.NoError(t, err)
	assert.EqualValues(t, 50, rep.Orders.Total())
	assert.Nil(t, rep.Server)
	assert.Contains(t, rep.StatsError, proxy.URL)
	assert.Contains(t, rep.StatsError, httpapi.ErrBadStats.Error())
	var text bytes.Buffer
	require.NoError(t, httpload.WriteText(&text, rep, ""))
	assert.Contains(t, text.String(), "latency ")
	assert.Contains(t, text.String(), rep.StatsError)
	js, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.Contains(t, string(js), `"stats_error"`)
}

// encoded is a histogram of vs as a Meter serves it.
func encoded(t *testing.T, vs []int64) httpapi.EncodedHistogram {
	t.Helper()
	h := httpapi.NewHistogram()
	var sum, mx int64
	for _, v := range vs {
		require.NoError(t, h.RecordValue(v))
		sum += v
		mx = max(mx, v)
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	require.NoError(t, err)
	return httpapi.EncodedHistogram{Count: int64(len(vs)), SumNs: sum, MaxNs: mx, HDR: string(b)}
}

// Percentiles cannot be merged, histograms can: three processes' encoded histograms, merged,
// give the percentiles of one histogram fed every value.
func TestMergedPercentilesAreThoseOfOneHistogramOfAllValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var parts [3][]int64
	var all []int64
	for i := range 30000 {
		// Three different distributions: the mean of their percentiles is not the merged one.
		v := int64(rng.ExpFloat64() * float64(time.Microsecond) * float64(1+10*(i%3)))
		v = max(v, 1)
		parts[i%3] = append(parts[i%3], v)
		all = append(all, v)
	}
	m := httpload.NewMerged()
	for _, p := range parts {
		require.NoError(t, m.Add(encoded(t, p)))
	}
	one := httpapi.NewHistogram()
	var sum int64
	for _, v := range all {
		require.NoError(t, one.RecordValue(v))
		sum += v
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		assert.Equal(t, time.Duration(one.ValueAtQuantile(q)), m.Quantile(q), "p%v", q)
	}
	d := m.Dist()
	assert.EqualValues(t, len(all), d.Count)
	assert.Equal(t, time.Duration(sum/int64(len(all))), d.Mean, "the mean is exact")
	assert.Equal(t, time.Duration(one.ValueAtQuantile(99)), d.P99)
	assert.ErrorIs(t, m.Add(httpapi.EncodedHistogram{Count: 1, HDR: "garbage"}), httpapi.ErrBadStats)
	assert.EqualValues(t, len(all), m.Count(), "a bad histogram merges nothing")
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  string
		err  error
		want load.Outcome
	}{
		{"allocated", "b1", nil, load.Allocated},
		{"allocated with a warning", "b1", &httpapi.StatusError{Status: 201}, load.Allocated},
		{"out of stock", "", domain.ErrOutOfStock, load.OutOfStock},
		{"invalid", "", &httpapi.StatusError{Status: 400}, load.Invalid},
		{"conflict", "", &httpapi.StatusError{Status: 409}, load.Failed},
		{"unavailable", "", &httpapi.StatusError{Status: 503}, load.Failed},
		{"no answer", "", context.DeadlineExceeded, load.Unknown},
		{"a transport error", "", errors.New("connection reset"), load.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, httpload.Classify(tc.ref, tc.err)) })
	}
}

func TestTextRoundsToThreeSignificantDigits(t *testing.T) {
	rep := &httpload.Report{Targets: []string{"http://a"}, Model: "closed", Workers: 1, Spread: "one target"}
	rep.Latency.Count, rep.Latency.P50, rep.Latency.Max = 1, 241663*time.Nanosecond, 4825769*time.Nanosecond
	var b bytes.Buffer
	require.NoError(t, httpload.WriteText(&b, rep, "head"))
	assert.Contains(t, b.String(), "p50 242µs")
	assert.Contains(t, b.String(), "max 4.83ms")
	assert.True(t, strings.HasPrefix(b.String(), "head\n"))
}

func TestMergeStatsAddsEveryProcess(t *testing.T) {
	var stats []httpapi.Stats
	for i, n := range []int{3, 5} {
		m := httpapi.NewMeter(fmt.Sprintf("life-%d", i))
		h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		for range n {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/allocate", nil))
		}
		s, err := m.Stats()
		require.NoError(t, err)
		stats = append(stats, s)
	}
	srv, err := httpload.MergeStats(stats)
	require.NoError(t, err)
	assert.Equal(t, []string{"life-0", "life-1"}, srv.Instances)
	assert.EqualValues(t, 8, srv.Requests.Count)
	assert.EqualValues(t, 8, srv.Dispatch.Count)
	assert.Zero(t, srv.Dispatch.Max, "no handler ran")
	stats[1].Dispatch.HDR = "garbage"
	_, err = httpload.MergeStats(stats)
	assert.ErrorIs(t, err, httpapi.ErrBadStats)
	assert.Contains(t, err.Error(), "life-1")
}

// A target that restarted between the baseline and the end (its stats name another life): its
// figures are counted whole and the report names it.
func TestRunCountsARestartedTargetWhole(t *testing.T) {
	m := httpapi.NewMeter("ignored")
	uow := service.Bootstrap(fakes.NewStore(), fakes.NewMailer(), service.WithBusOptions(service.WithMiddleware(m.Middleware())))
	var lives atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/", m.Wrap(httpapi.NewHandler(uow)))
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Stats()
		require.NoError(t, err)
		s.Instance = fmt.Sprintf("api-life-%d", lives.Add(1))
		w.Header().Set("Content-Type", "application/json")
		require.NoError(t, json.NewEncoder(w).Encode(s))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	plan := newPlan(t, 40)
	rep, err := httpload.Run(t.Context(), httpload.Config{Targets: []string{srv.URL}, Plan: plan, Closed: &load.Closed{Workers: 2, Orders: 40}})
	require.NoError(t, err)
	require.NotNil(t, rep.Server, rep.StatsError)
	assert.Equal(t, []string{"api-life-2"}, rep.Server.Restarted)
	assert.EqualValues(t, 40+len(plan.Batches), rep.Server.Requests.Count, "the whole life: the seeding too")
}
