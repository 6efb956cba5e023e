package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

// metered is the API over the fakes with a Meter, as cmd/api wires it: the meter's middleware
// outermost on the bus, its Wrap around the API, GET /stats beside it.
func metered(t *testing.T, mailer service.Mailer) (*httpapi.Meter, *httptest.Server, *service.Transactor, *httpapi.Client) {
	t.Helper()
	m := httpapi.NewMeter("test")
	uow := service.Bootstrap(fakes.NewStore(), mailer, service.WithBusOptions(service.WithMiddleware(m.Middleware())))
	mux := http.NewServeMux()
	mux.Handle("/", m.Wrap(httpapi.NewHandler(uow)))
	mux.Handle("/stats", m)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := httpapi.NewClient(srv.URL)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return m, srv, uow, c
}

func decoded(t *testing.T, e httpapi.EncodedHistogram) int64 {
	t.Helper()
	h, err := e.Decode()
	require.NoError(t, err)
	return h.TotalCount()
}

func TestMeterRecordsEveryRequestAndItsDispatch(t *testing.T) {
	const mailTime = time.Millisecond
	_, _, _, c := metered(t, fakes.NewMailer(fakes.WithLatency(fakes.Fixed(mailTime))))
	ctx := t.Context()
	require.NoError(t, c.AddBatch(ctx, "b1", "LAMP", 2, time.Time{}))
	for i := range 5 { // 2 allocated, 3 out of stock: 3 mails of at least mailTime each
		_, _ = c.Allocate(ctx, fmt.Sprintf("o%d", i), "LAMP", 1)
	}
	s, err := c.Stats(ctx)
	require.NoError(t, err)
	assert.Equal(t, "test", s.Instance)
	assert.EqualValues(t, 6, s.Requests.Count, "1 add_batch and 5 allocate")
	assert.EqualValues(t, 6, decoded(t, s.Requests))
	assert.EqualValues(t, 6, s.Dispatch.Count, "one dispatch time per request, 0 included")
	assert.GreaterOrEqual(t, s.Dispatch.SumNs, int64(3*mailTime), "the 3 mails were sent inside their requests")
	assert.LessOrEqual(t, s.Dispatch.SumNs, s.Requests.SumNs, "dispatch is part of the request")
	assert.LessOrEqual(t, s.Dispatch.MaxNs, s.Requests.MaxNs)
	assert.Zero(t, s.Relayed.Count, "every handler ran inside a request")
}

func TestMeterCountsHandlersOutsideARequestAsRelayed(t *testing.T) {
	m, _, uow, c := metered(t, fakes.NewMailer())
	// What a relay does: hand a committed event to the bus, in no request.
	err := uow.Bus().Handle(context.Background(), domain.OutOfStock{SKU: "LAMP"})
	require.NoError(t, err)
	s, err := c.Stats(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 1, s.Relayed.Count)
	assert.Zero(t, s.Requests.Count)
	direct, err := m.Stats()
	require.NoError(t, err)
	assert.Equal(t, direct.Relayed.Count, s.Relayed.Count)
}

func TestMeterCountsANestedHandlerOnce(t *testing.T) {
	m := httpapi.NewMeter("nested")
	mw := m.Middleware()
	inner := mw(func(context.Context, domain.Event) error { time.Sleep(time.Millisecond); return nil })
	outer := mw(func(ctx context.Context, e domain.Event) error { return inner(ctx, e) })
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = outer(r.Context(), domain.OutOfStock{SKU: "LAMP"})
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/allocate", nil))
	s, err := m.Stats()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, s.Dispatch.SumNs, int64(time.Millisecond))
	// Counted twice, the dispatch would be twice the handler's time and more than the request's.
	assert.LessOrEqual(t, s.Dispatch.SumNs, s.Requests.SumNs)
}

func TestClientStatsRefusesABadAnswer(t *testing.T) {
	good, err := httpapi.NewMeter("x").Stats()
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"not JSON", http.StatusOK, "hello", httpapi.ErrBadStats},
		{"no histograms", http.StatusOK, `{"instance": "x"}`, httpapi.ErrBadStats},
		{"a histogram that does not decode", http.StatusOK, `{"requests": {"count": 0, "hdr": "bm90IGEgaGlzdG9ncmFt"}}`, httpapi.ErrBadStats},
		{"a count the histogram does not hold", http.StatusOK,
			fmt.Sprintf(`{"requests": {"count": 3, "hdr": %q}, "dispatch": {"hdr": %q}, "relayed": {"hdr": %q}}`, good.Requests.HDR, good.Requests.HDR, good.Requests.HDR),
			httpapi.ErrBadStats},
		{"no such path", http.StatusNotFound, "404 page not found", httpapi.ErrRejected},
		{"a server error", http.StatusInternalServerError, `{"message": "internal error"}`, httpapi.ErrServer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, err := httpapi.NewClient(srv.URL)
			require.NoError(t, err)
			defer c.CloseIdleConnections()
			_, err = c.Stats(t.Context())
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "Stats on %s: %v, want %v", tc.name, err, tc.want)
		})
	}
}

func TestMeterServesGETOnly(t *testing.T) {
	_, srv, _, _ := metered(t, fakes.NewMailer())
	resp, err := srv.Client().Post(srv.URL+"/stats", "application/json", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
}
