package output_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

// benchLine is what benchstat reads: a name with a -GOMAXPROCS suffix, an iteration count, and
// value-unit pairs.
var benchLine = regexp.MustCompile(`^Benchmark\S+-\d+\t\d+(\t-?[0-9.]+(e[+-]?\d+)? \S+)+$`)

func comparedReports(t *testing.T) []sim.Report {
	t.Helper()
	var reports []sim.Report
	for _, s := range []string{sim.Sync, sim.Async, sim.Outbox} {
		cfg := tiny()
		cfg.Strategy = s
		reports = append(reports, run(t, cfg))
	}
	return reports
}

func TestJSONHasTheDocumentedFields(t *testing.T) {
	reports := comparedReports(t)
	var buf bytes.Buffer
	require.NoError(t, output.WriteJSON(&buf, reports, nil))
	var out struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &out), "output: %s", buf.String())
	require.Len(t, out.Runs, 3)
	sync := out.Runs[0]
	for _, path := range []string{
		"config.seed", "config.strategy", "config.workers", "config.mailer_latency.dist", "config.orders", "config.warmup_orders",
		"env.go_version", "env.gomaxprocs", "plan_digest", "interrupted", "elapsed_ns", "window_ns", "drain_ns",
		"counts.sent", "counts.allocated", "counts.out_of_stock", "counts.rejected", "counts.failed", "counts.retries_exhausted",
		"counts.events_raised", "counts.events_delivered", "counts.mails", "counts.version_conflicts", "counts.retries",
		"throughput.achieved_per_s", "throughput.offered_per_s",
		"latency.min_ns", "latency.p50_ns", "latency.p90_ns", "latency.p99_ns", "latency.p999_ns", "latency.max_ns", "latency.mean_ns",
		"dispatch.mean_ns", "dispatch.p99_ns", "dispatch.share", "delivery_lag.p99_ns", "generator_lag.count", "start_delay.count",
		"strategy.max_depth", "mailer.achieved_mean_ns", "mailer.requested.mean_ns",
		"model.predicted_per_s", "model.measured_per_s", "model.ratio", "model.within_10pct", "model.t0_ns", "model.r", "model.l_ns",
		"little.product", "little.in_flight", "little.ratio",
		"memory.bytes_per_order", "memory.peak_heap_bytes", "memory.peak_rss_bytes", "memory.history_bytes",
		"invariants", "ok",
	} {
		var v any = sync
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			require.True(t, ok, "%s: %v is not an object", path, v)
			v, ok = m[k]
			require.True(t, ok, "field %s missing from the JSON report", path)
		}
	}
	_, hasModel := out.Runs[1]["model"]
	assert.False(t, hasModel, "no model check for async")
	inv := sync["invariants"].([]any)[0].(map[string]any)
	assert.Equal(t, sim.InvNoOverAllocation, inv["name"])
	assert.Equal(t, true, inv["ok"])
}

func TestBenchLinesParse(t *testing.T) {
	reports := comparedReports(t)
	var buf bytes.Buffer
	require.NoError(t, output.WriteBench(&buf, reports, nil))
	var names []string
	for line := range strings.Lines(buf.String()) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "Benchmark") {
			require.Regexp(t, benchLine, line)
			names = append(names, strings.Fields(line)[0])
			assert.Contains(t, line, " orders/s")
			assert.Contains(t, line, " ns/op")
			continue
		}
		assert.Regexp(t, `^[a-z]+: .+$`, line, "a configuration line")
	}
	require.Len(t, names, 3)
	assert.Contains(t, names[0], "BenchmarkSimulate/strategy=sync/")
	assert.Contains(t, names[2], "/strategy=outbox/")
	assert.NotContains(t, strings.TrimSuffix(names[0], names[0][strings.LastIndex(names[0], "-"):]), "-", "only the GOMAXPROCS suffix has a dash")
}

func TestTextReportShowsEveryPart(t *testing.T) {
	reports := comparedReports(t)
	out := text(t, reports[0])
	for _, want := range []string{
		"stockbus simulate: sync dispatch, closed model, 3 workers", "seed 42", "GOMAXPROCS", "workload", "plan",
		"orders", "events", "mails", "conflicts", "throughput", "orders/s", "latency", "p99.9", "dispatch", "% of request time",
		"delivery lag", "mailer", "model", "N/(t0 + r·L)", "little", "memory", "invariants", sim.InvNoLoss,
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "BROKEN")

	out = comparison(t, reports)
	assert.Regexp(t, `sync\s+async/block\s+outbox`, out)
	assert.Contains(t, out, "dispatch share")
	assert.Contains(t, out, "delivery lag p99")
}

func TestSweepTable(t *testing.T) {
	sw, cfgs := sweepPlan(t, "workers=1,2")
	reports := runAll(t, cfgs)
	require.Len(t, reports, 4)

	var buf bytes.Buffer
	require.NoError(t, output.WriteSweep(&buf, reports, sw))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Regexp(t, `workers\s+strategy\s+orders/s\s+p50\s+p99`, lines[0])
	for i, want := range []string{`^\s*1\s+sync`, `^\s*1\s+async`, `^\s*2\s+sync`, `^\s*2\s+async`} {
		assert.Regexp(t, want, lines[i+1], "one row per point and strategy")
	}

}

func faultyReports(t *testing.T) []sim.Report {
	t.Helper()
	var reports []sim.Report
	for _, s := range []string{sim.Sync, sim.Outbox} {
		cfg := tiny()
		cfg.Strategy, cfg.Crash.AfterCommit, cfg.MailErrors, cfg.ClientRetry = s, 0.05, 0.1, 0.5
		reports = append(reports, run(t, cfg))
	}
	return reports
}

func TestReportsShowFaultsAndAccounting(t *testing.T) {
	reports := faultyReports(t)
	out := text(t, reports[0])
	for _, want := range []string{
		"faults    crash after-commit=0.05; mail errors 0.1; clients resend after an unknown outcome with p=0.5; then a liveness phase without faults",
		"promise   at-most-once + delivered when nothing fails", "fired", "crashes ", "after-commit ", "send errors ", "client resends ",
		"accounting", "lost ", "in a crash ", "duplicated ", "unexpected ", "recovered ", "liveness", "(orders done, faults off)",
		"(faults fired and the strategy does not promise at-least-once)",
	} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "rerun:", "only a failing run says how to rerun it")

	plain := text(t, comparedReports(t)[0])
	assert.NotContains(t, plain, "fired", "no fault, nothing fired")
	assert.Contains(t, plain, "accounting")

	out = comparison(t, reports)
	for _, want := range []string{"at-most-once / at-least-once", "crashes", "lost", "OutOfStock / other", "in a crash / send failed", "duplicated", "resends / dedup hits",
		"unexpected", "recovered", "pending when faults stopped", "still pending after drain", "faults: crash after-commit=0.05"} {
		assert.Contains(t, out, want)
	}
	assert.Regexp(t, `at-most-once / at-least-once\s+yes / no\s+yes / yes`, out)

	assert.NotContains(t, comparison(t, comparedReports(t)), "in a crash", "no accounting rows without faults")
}

func TestJSONHasTheFaultFields(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, output.WriteJSON(&buf, faultyReports(t), nil))
	var out struct {
		Runs []map[string]any `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &out))
	for _, path := range []string{
		"config.crash.after_commit", "config.conflict_rate", "config.mail_error_rate", "config.mail_timeout_ns", "config.timeout_delivered",
		"config.client_retry", "config.bad_input", "config.rendezvous", "config.handler_attempts", "config.handler_backoff_ns",
		"config.dedup", "config.require.no_loss", "config.workload",
		"counts.events_lost", "counts.publications", "counts.client_resends", "counts.client_resolved", "counts.bad_orders", "counts.forced_conflicts",
		"faults.crashes.total", "faults.crashes.after_commit", "faults.forced_conflicts", "faults.send_errors", "faults.timeouts",
		"faults.timeouts_delivered", "faults.handler_retries", "faults.client_resends", "faults.bad_orders", "faults.bad_batches",
		"accounting.committed", "accounting.delivered", "accounting.lost", "accounting.lost_in_crash", "accounting.lost_send_failed",
		"accounting.lost_other", "accounting.duplicated", "accounting.resends", "accounting.unexpected", "accounting.recovered",
		"accounting.false_out_of_stock", "accounting.pending", "accounting.liveness.pending_at_start",
		"accounting.liveness.still_pending", "accounting.by_kind", "promise.no_loss", "promise.no_duplicate", "promise.delivered",
		"command", "strategy.lives",
	} {
		var v any = out.Runs[0]
		for _, k := range strings.Split(path, ".") {
			m, ok := v.(map[string]any)
			require.True(t, ok, "%s: %v is not an object", path, v)
			v, ok = m[k]
			require.True(t, ok, "field %s missing from the JSON report", path)
		}
	}
	assert.Equal(t, goRun+" -strategy outbox -skus 3 -orders 300 -warmup 20 -workers 3 -mailer-latency 0s -crash after-commit=0.05 -mail-errors 0.1 -client-retry 0.5",
		out.Runs[1]["command"])
}
