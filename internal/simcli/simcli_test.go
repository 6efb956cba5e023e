package simcli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tiny keeps every end-to-end run small enough for -race.
var tiny = []string{"-orders", "200", "-skus", "3", "-mailer-latency", "0", "-warmup", "10", "-workers", "2"}

func simulate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), Adapters{}, args, &out, &errOut, false)
	return code, out.String(), errOut.String()
}

func TestNoFlagsComparesTheFourStrategies(t *testing.T) {
	cfg, opt, fs, err := parseFlags(nil)
	require.NoError(t, err)
	cfgs, sweep, err := plan(cfg, opt, fs)
	require.NoError(t, err)
	assert.Nil(t, sweep)
	require.Len(t, cfgs, 4)
	for i, s := range []string{"sync", "sync-retry", "async", "outbox"} {
		assert.Equal(t, s, cfgs[i].Strategy)
		assert.Equal(t, cfgs[0].Seed, cfgs[i].Seed, "the same workload")
	}
	assert.Positive(t, cfgs[0].Mailer.Mean, "a mailer with some latency shows the cost")
}

func TestTextCompare(t *testing.T) {
	code, out, errOut := simulate(t, tiny...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Regexp(t, `sync\s+sync-retry\s+async/block\s+outbox`, out)
	assert.Contains(t, out, "throughput (orders/s)")
	assert.Empty(t, errOut, "no progress bar when stderr is not a terminal")
}

func TestTextSingleRun(t *testing.T) {
	code, out, errOut := simulate(t, append(tiny, "-strategy", "sync")...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Contains(t, out, "stockbus simulate: sync dispatch, closed model, 2 workers")
	assert.Contains(t, out, "N/(t0 + r·L)")
	assert.Regexp(t, `invariants\s+ok`, out)
}

func TestJSONParses(t *testing.T) {
	code, out, errOut := simulate(t, append(tiny, "-format", "json", "-compare", "sync,outbox")...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	var got struct {
		Runs []struct {
			Config struct {
				Strategy string `json:"strategy"`
				Orders   int    `json:"orders"`
			} `json:"config"`
			Counts struct {
				Sent int `json:"sent"`
			} `json:"counts"`
			OK bool `json:"ok"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got), "output: %s", out)
	require.Len(t, got.Runs, 2)
	assert.Equal(t, "sync", got.Runs[0].Config.Strategy)
	assert.Equal(t, "outbox", got.Runs[1].Config.Strategy)
	assert.Equal(t, 200, got.Runs[0].Counts.Sent)
	assert.True(t, got.Runs[1].OK)
}

func TestBenchLinesParse(t *testing.T) {
	code, out, errOut := simulate(t, append(tiny, "-format", "bench", "-count", "2")...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	line := regexp.MustCompile(`^Benchmark\S+-\d+\t\d+(\t-?[0-9.]+ \S+)+$`)
	n := 0
	for l := range strings.Lines(out) {
		l = strings.TrimRight(l, "\n")
		if strings.HasPrefix(l, "Benchmark") {
			assert.Regexp(t, line, l)
			n++
		}
	}
	assert.Equal(t, 8, n, "four strategies, twice")
}

func TestSweepWritesATableAndTheReportAskedFor(t *testing.T) {
	for _, flagName := range []string{"-report", "-chart"} {
		t.Run(flagName, func(t *testing.T) {
			page := filepath.Join(t.TempDir(), "sweep.html")
			code, out, errOut := simulate(t, append(tiny, "-strategy", "sync", "-sweep", "mailer-latency=0,200µs", flagName, page)...)
			require.Equal(t, 0, code, "stderr: %s", errOut)
			assert.Regexp(t, `mailer-latency\s+strategy\s+orders/s`, out)
			assert.Regexp(t, `(?m)^\s*0s\s+sync`, out)
			assert.Regexp(t, `(?m)^\s*200µs\s+sync`, out)
			html, err := os.ReadFile(page)
			require.NoError(t, err)
			assert.Contains(t, string(html), "Throughput vs mailer-latency")
			assert.Contains(t, errOut, "report written to "+page)
			assert.Equal(t, flagName == "-chart", strings.Contains(errOut, "-chart is deprecated"), errOut)
		})
	}
}

func TestNoFileIsWrittenUnlessAskedFor(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	code, _, errOut := simulate(t, append(tiny, "-strategy", "sync", "-sweep", "workers=1,2", "-format", "json")...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a sweep without -report writes nothing")
}

func TestRunAndComparisonWriteAReport(t *testing.T) {
	for name, args := range map[string][]string{"run": {"-strategy", "outbox"}, "comparison": {"-compare", "sync,outbox"}} {
		t.Run(name, func(t *testing.T) {
			page := filepath.Join(t.TempDir(), "run.html")
			code, _, errOut := simulate(t, append(append(tiny, args...), "-report", page)...)
			require.Equal(t, 0, code, "stderr: %s", errOut)
			html, err := os.ReadFile(page)
			require.NoError(t, err)
			assert.Contains(t, string(html), `id="spectrum"`)
			assert.Contains(t, string(html), `id="timeline-p99"`)
		})
	}
}

func TestUnwritableReportIsAUsageErrorBeforeTheRun(t *testing.T) {
	page := filepath.Join(t.TempDir(), "no-such-dir", "x.html")
	code, out, errOut := simulate(t, append(tiny, "-strategy", "sync", "-report", page)...)
	assert.Equal(t, 2, code)
	assert.Empty(t, out, "nothing ran")
	assert.Contains(t, errOut, "simulate: -report: cannot write "+page)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
}

func TestFlagErrorsSayWhatWasWanted(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"duration", []string{"-duration", "5x"}, `simulate: -duration: "5x" is not a duration (e.g. 30s, 2m)` + "\n"},
		{"int", []string{"-workers", "two"}, `simulate: -workers: "two" is not a whole number (e.g. 8)` + "\n"},
		{"float", []string{"-demand", "lots"}, `simulate: -demand: "lots" is not a number (e.g. 0.5)` + "\n"},
		{"bool", []string{"-record=maybe"}, `simulate: -record: "maybe" is not true or false` + "\n"},
		{"func flag keeps its own reason", []string{"-mailer-latency", "soon"}, `simulate: -mailer-latency: bad duration "soon"`},
		{"sweep value", []string{"-sweep", "workers=1,x"}, `simulate: -sweep: workers=x: "x" is not a whole number (e.g. 8)` + "\n"},
		{"sweep float", []string{"-sweep", "mail-errors=0.1,lots"}, `simulate: -sweep: mail-errors=lots: "lots" is not a number (e.g. 0.5)` + "\n"},
		{"no -compare prefix by default", []string{"-workers", "-1"}, "simulate: -workers: must be at least 1, got -1\n"},
		{"-compare prefix when given", []string{"-compare", "sync", "-workers", "-1"}, "simulate: -compare: -workers: must be at least 1"},
		{"empty -compare", []string{"-compare", ""}, "simulate: -compare: want strategies separated by commas"},
		{"blank -compare", []string{"-compare", " "}, "simulate: -compare: want strategies separated by commas"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := simulate(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			if strings.HasSuffix(tc.want, "\n") {
				assert.Equal(t, tc.want, errOut)
			} else {
				assert.True(t, strings.HasPrefix(errOut, tc.want), "got %q, want it to start with %q", errOut, tc.want)
			}
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	code, out, errOut := simulate(t, "-h")
	require.Equal(t, 0, code)
	assert.Empty(t, errOut)
	_, _, fs, _ := parseFlags(nil)
	fs.VisitAll(func(f *flag.Flag) {
		assert.Regexp(t, regexp.MustCompile(`(?m)^  -`+regexp.QuoteMeta(f.Name)+`\b`), out, "-h documents -%s", f.Name)
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
			assert.Regexp(t, regexp.MustCompile(`(?s)-`+regexp.QuoteMeta(f.Name)+`\b.*?\(default `), out, "-h gives the default of -%s", f.Name)
		}
	})
	for _, name := range []string{"mailer-latency", "batch-qty", "order-qty", "warmup"} {
		assert.Regexp(t, regexp.MustCompile(`(?s)-`+name+` .*?\(default `), out, "-h gives the default of -%s", name)
	}
}

func TestBadFlagsExitTwoWithOneLineNamingTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"-workers", "0"}, "-workers"},
		{[]string{"-workers", "two"}, "-workers"},
		{[]string{"-orders", "-5"}, "-orders"},
		{[]string{"-orders", "0", "-duration", "0"}, "-orders"},
		{[]string{"-strategy", "pigeon"}, "-strategy"},
		{[]string{"-compare", "sync,pigeon"}, "-compare"},
		{[]string{"-model", "open", "-rate", "0"}, "-rate"},
		{[]string{"-format", "xml"}, "-format"},
		{[]string{"-mailer-latency", "soon"}, "-mailer-latency"},
		{[]string{"-batch-qty", "9..1"}, "-batch-qty"},
		{[]string{"-seed", "0"}, "-seed"},
		{[]string{"-sweep", "speed=1,2"}, "-sweep"},
		{[]string{"-count", "0"}, "-count"},
		{[]string{"-crash", "after-lunch=0.1"}, "-crash"},
		{[]string{"-crash", "after-commit=2"}, "-crash"},
		{[]string{"-conflict-rate", "1.5"}, "-conflict-rate"},
		{[]string{"-mail-errors", "-0.1"}, "-mail-errors"},
		{[]string{"-mail-timeout", "-1ms"}, "-mail-timeout"},
		{[]string{"-client-retry", "2"}, "-client-retry"},
		{[]string{"-bad-input", "NaN"}, "-bad-input"},
		{[]string{"-rendezvous", "9"}, "-rendezvous"},
		{[]string{"-rendezvous", "2", "-crash", "after-commit=0.1"}, "-rendezvous"},
		{[]string{"-handler-attempts", "0"}, "-handler-attempts"},
		{[]string{"-strategy", "outbox", "-relays", "0"}, "-relays"},
		{[]string{"-strategy", "outbox", "-relays", "65"}, "-relays"},
		{[]string{"-strategy", "sync", "-relays", "3"}, "-relays"},
		{[]string{"-relays", "3"}, "-relays"}, // the default comparison runs sync too
		{[]string{"-require", "everything"}, "-require"},
		{[]string{"-workload", "cold-sku"}, "-workload"},
		{[]string{"-mailer", "smtp"}, "-mailer"},
		{[]string{"-mailer", "smtp://mail.example:25"}, "-mailer"},
		{[]string{"-mailer", "smtp://mail.example"}, "-mailer"},
		{[]string{"-mailer", "pigeon"}, "-mailer"},
		{[]string{"-no-such-flag"}, "-no-such-flag"},
		{[]string{"stray"}, "stray"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := simulate(t, tc.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, out)
			assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
			assert.Contains(t, errOut, tc.flag)
			assert.True(t, strings.HasPrefix(errOut, "simulate: "), errOut)
		})
	}
}

func TestInterruptedRunPrintsWhatRan(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, Adapters{}, append(tiny, "-strategy", "sync"), &out, &errOut, false)
	assert.Equal(t, 130, code)
	assert.Empty(t, out.String(), "nothing ran, nothing to print")

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	out.Reset()
	args := append(tiny, "-strategy", "sync", "-duration", "1h", "-mailer-latency", "1ms", "-warmup", "0")
	done := make(chan int)
	go func() { done <- Run(ctx, Adapters{}, args, &out, &errOut, false) }()
	cancel()
	assert.Equal(t, 130, <-done)
}

func TestCommandRunsTheSameConfigAgain(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-strategy", "outbox", "-seed", "7", "-orders", "10", "-warmup", "2"},
		{"-workload", "hot-sku", "-strategy", "sync-retry", "-crash", "after-commit=0.05,relay-sent=0.1", "-mail-errors", "0.1",
			"-mail-timeout", "2ms", "-timeout-delivered", "0.25", "-client-retry", "0.5", "-conflict-rate", "0.2", "-bad-input", "0.01",
			"-handler-attempts", "4", "-handler-backoff", "50µs", "-dedup=false", "-record", "-require", "no-loss,no-duplicate",
			"-mailer-latency", "uniform:1ms..3ms", "-warmup", "100ms", "-duration", "1s", "-retries", "-1"},
		{"-workers", "2", "-rendezvous", "2", "-model", "closed", "-mailer-latency", "exp:2ms", "-batch-qty", "5..9", "-demand", "-1"},
		{"-strategy", "outbox", "-crash-at", "after-commit=2,relay-sent=7/9", "-hold-faults", "300", "-require", "no-duplicate-publish"},
		{"-strategy", "outbox", "-relays", "3", "-crash", "relay-sent=0.1", "-dedup=false"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			want, _, _, err := parseFlags(args)
			require.NoError(t, err)
			cmd := want.Command()
			flags, ok := cutGoRun(cmd)
			require.True(t, ok, cmd)
			got, _, _, err := parseFlags(strings.Fields(flags))
			require.NoError(t, err, "parsing %s", cmd)
			assert.Equal(t, want, got, "%s runs another config", cmd)
		})
	}
}

// A failing run prints the one command line that reproduces it, and that command fails the same
// way with the same history: sync does not promise at-least-once, and -require asks it to.
func TestAFailingRunPrintsTheCommandThatReproducesIt(t *testing.T) {
	args := []string{"-workload", "hot-sku", "-orders", "700", "-workers", "1", "-mailer-latency", "0", "-record",
		"-crash", "after-commit=0.05", "-require", "no-loss", "-compare", "sync,outbox", "-format", "json"}
	code, out, errOut := simulate(t, args...)
	require.Equal(t, 1, code, "stderr: %s", errOut)
	assert.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	m := regexp.MustCompile(`^simulate: sync broke "no committed event lost" \(seed 42\); rerun: (go run (?:-race )?\./cmd/simulate .*)\n$`).FindStringSubmatch(errOut)
	require.NotNil(t, m, "stderr: %q", errOut)
	digest := func(out string) string {
		var got struct {
			Runs []struct {
				Config struct {
					Strategy string `json:"strategy"`
				} `json:"config"`
				HistoryDigest string `json:"history_digest"`
				OK            bool   `json:"ok"`
				Command       string `json:"command"`
			} `json:"runs"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &got), "output: %s", out)
		require.NotEmpty(t, got.Runs)
		require.Equal(t, "sync", got.Runs[0].Config.Strategy)
		require.False(t, got.Runs[0].OK)
		return got.Runs[0].HistoryDigest
	}
	first := digest(out)

	flags, ok := cutGoRun(m[1])
	require.True(t, ok, m[1])
	again := strings.Fields(flags)
	code, out, errOut = simulate(t, append(again, "-format", "json")...)
	require.Equal(t, 1, code, "the rerun fails too: %s", errOut)
	assert.Equal(t, first, digest(out), "the same history, crash for crash")
	assert.Contains(t, errOut, "rerun: "+m[1])
}

func TestQuantityChangesFlag(t *testing.T) {
	for _, v := range []string{"-0.5", "1.5"} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Adapters{}, []string{"-strategy", "sync", "-quantity-changes", v}, &out, &errOut, false)
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, errOut.String(), "-quantity-changes")
	}
	var out, errOut bytes.Buffer
	code := Run(context.Background(), Adapters{}, []string{"-strategy", "sync", "-quantity-changes", "0.05", "-orders", "300", "-warmup", "20", "-mailer-latency", "0"}, &out, &errOut, false)
	assert.Equal(t, exitOK, code, errOut.String())
	assert.Contains(t, out.String(), "chains")
	assert.Contains(t, out.String(), "Deallocated")
}

// cutGoRun returns the flags of a rerun command, which starts "go run ./cmd/simulate", or
// "go run -race ./cmd/simulate" in a build with the race detector.
func cutGoRun(cmd string) (string, bool) {
	if flags, ok := strings.CutPrefix(cmd, "go run ./cmd/simulate "); ok {
		return flags, true
	}
	return strings.CutPrefix(cmd, "go run -race ./cmd/simulate ")
}

func TestMoreWorkersThanOrdersIsAUsageError(t *testing.T) {
	code, out, errOut := simulate(t, "-orders", "300", "-warmup", "0", "-workers", "301")
	assert.Equal(t, 2, code, "stdout: %s", out)
	assert.Contains(t, errOut, "-workers: 301 workers for -orders 300")
	assert.Empty(t, out, "nothing ran")
}

// One worker, half the commits forced to conflict and a budget of 3 retries: the seeded plan
// exhausts some orders' retries. The run says so first, in JSON beside ok, and -require
// no-failures makes it exit 1.
func TestFailedOrdersAreInTheHeadlineAndCanBeRequiredAway(t *testing.T) {
	args := []string{"-workload", "hot-sku", "-strategy", "sync", "-workers", "1", "-mailer-latency", "0",
		"-conflict-rate", "0.5", "-retries", "3"}
	code, out, errOut := simulate(t, args...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	first := strings.SplitN(out, "\n", 3)
	require.Len(t, first, 3)
	assert.Regexp(t, `^  FAILED: \d+ orders came back failed \(retries exhausted\)`, first[1], "the line after the title")

	code, out, errOut = simulate(t, append(args, "-format", "json")...)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	var got struct {
		Runs []struct {
			OK     bool  `json:"ok"`
			Failed int64 `json:"failed"`
			Counts struct {
				Failed int64 `json:"failed"`
			} `json:"counts"`
		} `json:"runs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	require.Len(t, got.Runs, 1)
	assert.True(t, got.Runs[0].OK)
	assert.Positive(t, got.Runs[0].Failed)
	assert.Equal(t, got.Runs[0].Counts.Failed, got.Runs[0].Failed)

	code, _, errOut = simulate(t, append(args, "-require", "no-failures")...)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, `broke "no order failed (-require no-failures)"`)
}

func TestRequireModelWithoutAModelIsAUsageError(t *testing.T) {
	code, out, errOut := simulate(t, "-model", "open", "-require", "model", "-orders", "300", "-warmup", "0")
	assert.Equal(t, 2, code, "stdout: %s", out)
	assert.Contains(t, errOut, "-require: model: only a closed sync run has a model check (got -model open, -strategy sync)")
}

// The fakes-only command runs no SMTP and says which command does, as it does for -store.
func TestSMTPMailerNeedsTheRealCommand(t *testing.T) {
	for _, v := range []string{"smtp", "smtp://mail.example:25"} {
		code, out, errOut := simulate(t, "-mailer", v)
		assert.Equal(t, 2, code)
		assert.Empty(t, out)
		assert.Contains(t, errOut, "not linked into this command")
		assert.Contains(t, errOut, RealCommand+" -mailer "+v)
	}
	code, out, errOut := simulate(t, append(tiny, "-mailer", "fakes", "-strategy", "sync")...)
	assert.Equal(t, 0, code, "stderr: %s", errOut)
	assert.NotContains(t, out, "mailer send", "the fake mailer's report is as it was")
	assert.Contains(t, out, "asked fixed 0s, achieved mean")
}
