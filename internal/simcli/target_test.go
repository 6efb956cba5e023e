package simcli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

// api is the book's API as cmd/api serves it on the fakes, with GET /stats.
func api(t *testing.T) (string, *fakes.Mailer) {
	t.Helper()
	m := httpapi.NewMeter("api-test")
	mailer := fakes.NewMailer()
	uow := service.Bootstrap(fakes.NewStore(), mailer, service.WithBusOptions(service.WithMiddleware(m.Middleware())))
	mux := http.NewServeMux()
	mux.Handle("/", m.Wrap(httpapi.NewHandler(uow)))
	mux.Handle("/stats", m)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL, mailer
}

var tinyTarget = []string{"-orders", "200", "-skus", "3", "-warmup", "10", "-workers", "2"}

func TestTargetRunsTheWorkloadOverHTTP(t *testing.T) {
	url, mailer := api(t)
	code, out, errOut := simulate(t, append(tinyTarget, "-target", url)...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Contains(t, out, "stockbus simulate -target: closed model over HTTP")
	assert.Contains(t, out, "sent 200")
	assert.Contains(t, out, "server      1 instance")
	assert.Regexp(t, `out of stock \d+`, out)
	assert.Contains(t, out, "from each order's intended start")
	assert.Positive(t, mailer.Len())
}

func TestTargetJSONCountsEveryOrder(t *testing.T) {
	a, _ := api(t)
	b, _ := api(t) // another store: the batches are only in a's, so b answers "Invalid sku"
	code, out, errOut := simulate(t, append(tinyTarget, "-model", "open", "-rate", "5000", "-backlog", "200", "-format", "json", "-target", a+","+b)...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	var rep struct {
		Seed   int64 `json:"seed"`
		Sent   int64 `json:"sent"`
		Orders struct {
			Allocated, OutOfStock, Invalid, Failed, Unknown int64
		} `json:"orders"`
		PerTarget []struct {
			Target  string `json:"target"`
			Invalid int64  `json:"invalid"`
		} `json:"per_target"`
		Server struct {
			Instances []string `json:"instances"`
		} `json:"server"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "%s", out)
	assert.EqualValues(t, 42, rep.Seed)
	assert.EqualValues(t, 200, rep.Sent)
	o := rep.Orders
	assert.EqualValues(t, 200, o.Allocated+o.OutOfStock+o.Invalid+o.Failed+o.Unknown)
	require.Len(t, rep.PerTarget, 2)
	assert.EqualValues(t, 100, rep.PerTarget[1].Invalid, "every other order went to the instance without the batches")
	assert.Len(t, rep.Server.Instances, 2)
}

func TestTargetFlagsThatMakeNoSenseExitTwoNamingTheFlag(t *testing.T) {
	url := "http://127.0.0.1:1"
	for _, tc := range []struct {
		name string
		args []string
		flag string
	}{
		{"a store", []string{"-store", "sqlite"}, "-store"},
		{"a strategy", []string{"-strategy", "outbox"}, "-strategy"},
		{"a comparison", []string{"-compare", "sync,async"}, "-compare"},
		{"a crash", []string{"-crash", "after-commit=0.1"}, "-crash"},
		{"mailer latency", []string{"-mailer-latency", "5ms"}, "-mailer-latency"},
		{"a sweep", []string{"-sweep", "workers=1,2"}, "-sweep"},
		{"an HTML report", []string{"-report", "x.html"}, "-report"},
		{"the bench format", []string{"-format", "bench"}, "-format"},
		{"a bad URL", []string{"-target", "ftp://x"}, "-target"},
		{"more workers than orders", []string{"-workers", "500"}, "-workers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := simulate(t, append(append([]string{"-target", url}, tinyTarget...), tc.args...)...)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tc.flag)
		})
	}
	for _, name := range []string{"-target-timeout=1s", "-no-stats"} {
		t.Run(name+" without -target", func(t *testing.T) {
			code, _, errOut := simulate(t, append(tinyTarget, name)...)
			assert.Equal(t, exitUsage, code)
			assert.Contains(t, errOut, strings.TrimSuffix(name, "=1s"))
		})
	}
}

func TestTargetThatDoesNotAnswerExitsOne(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	require.NoError(t, l.Close()) // nobody listens there now
	code, out, errOut := simulate(t, append(tinyTarget, "-target", url)...)
	assert.Equal(t, exitBroken, code)
	assert.Empty(t, out)
	assert.Contains(t, errOut, "seeding the batches failed")
}

func TestTargetWithoutStatsStillReports(t *testing.T) {
	uow, _, _ := fakes.New()
	srv := httptest.NewServer(httpapi.NewHandler(uow)) // no GET /stats: a 404
	defer srv.Close()
	code, out, errOut := simulate(t, append(tinyTarget, "-target", srv.URL)...)
	assert.Equal(t, exitBroken, code, "the servers' side is missing")
	assert.Contains(t, out, "sent 200")
	assert.Contains(t, errOut, "server stats: "+srv.URL)
	code, out, errOut = simulate(t, append(tinyTarget, "-seed", "9", "-target", srv.URL, "-no-stats")...)
	assert.Equal(t, exitOK, code, "stderr: %s", errOut)
	assert.NotContains(t, out, "server ")
}

func TestTargetInterruptedPrintsWhatRan(t *testing.T) {
	m := httpapi.NewMeter("api-test")
	uow := service.Bootstrap(fakes.NewStore(), fakes.NewMailer(), service.WithBusOptions(service.WithMiddleware(m.Middleware())))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var allocates atomic.Int64
	api := m.Wrap(httpapi.NewHandler(uow))
	mux := http.NewServeMux()
	mux.Handle("/stats", m)
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/allocate" && allocates.Add(1) == 50 {
			cancel() // Ctrl-C, in the middle of the run
		}
		api.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out, errOut bytes.Buffer
	code := Run(ctx, Adapters{}, append(tinyTarget, "-target", srv.URL), &out, &errOut, false)
	assert.Equal(t, exitInterrupted, code, "stderr: %s", errOut.String())
	assert.Contains(t, out.String(), "server      1 instance", "the stats are fetched after the interrupt")
	assert.NotContains(t, out.String(), "sent 200", "the run stopped early")
}
