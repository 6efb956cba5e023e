package output_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tiny is a workload small enough for -race: 3 skus, 300 orders, a mailer with no latency.
func tiny() sim.Config {
	cfg := sim.Default()
	cfg.SKUs, cfg.Orders, cfg.WarmupOrders, cfg.Workers = 3, 300, 20, 3
	cfg.Mailer = sim.FixedLatency(0)
	return cfg
}

func run(t *testing.T, cfg sim.Config) sim.Report {
	t.Helper()
	r, err := sim.Run(context.Background(), cfg)
	require.NoError(t, err, "Run(%+v)", cfg)
	return r
}

// text is r's text report.
func text(t *testing.T, r sim.Report) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, output.WriteText(&buf, r), "WriteText")
	return buf.String()
}

// comparison is the text comparison of reports.
func comparison(t *testing.T, reports []sim.Report) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, output.WriteComparison(&buf, reports, nil), "WriteComparison")
	return buf.String()
}

// sweepPlan is the sweep spec over tiny(), for sync and async: the sweep and its runs'
// configurations.
func sweepPlan(t *testing.T, spec string) (sim.Sweep, []sim.Config) {
	t.Helper()
	sw, err := sim.ParseSweep(spec)
	require.NoError(t, err, "ParseSweep(%q)", spec)
	cfgs, err := sw.Plan(tiny(), []string{sim.Sync, sim.Async})
	require.NoError(t, err, "Plan of %q", spec)
	return sw, cfgs
}

// runAll runs cfgs, as a sweep does.
func runAll(t *testing.T, cfgs []sim.Config) []sim.Report {
	t.Helper()
	reports, err := sim.RunAll(t.Context(), cfgs)
	require.NoError(t, err, "RunAll")
	return reports
}
