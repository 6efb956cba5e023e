package output_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

func TestFormatsAreTheCommandsFormats(t *testing.T) {
	var names []string
	for _, f := range output.Formats() {
		names = append(names, f.Name)
		got, ok := output.Lookup(f.Name)
		require.True(t, ok, "Lookup(%q)", f.Name)
		assert.Equal(t, f.Name, got.Name)
		assert.NotNil(t, got.Write, "%s has a writer", f.Name)
	}
	assert.Equal(t, []string{"text", "json", "bench"}, names, "text first: the default")
	assert.Equal(t, "text, json or bench", output.Names())
	assert.Equal(t, "output: text, json or bench (Go benchmark lines for benchstat)", output.Help(), "the -format help as it was")
	_, ok := output.Lookup("xml")
	assert.False(t, ok, "Lookup(xml)")

	f := output.Formats()
	f[0].Name = "changed"
	assert.Equal(t, "text", output.Formats()[0].Name, "Formats returns a copy")
}

// The text format shows strategies side by side, then the full report of each run that failed
// or was interrupted, and of nothing else.
func TestWriteReportsAddsTheFullReportOfEachFailedRun(t *testing.T) {
	good, bad, stopped := sim.Report{Config: sim.Default(), OK: true}, sim.Report{Config: sim.Default()}, sim.Report{Config: sim.Default(), OK: true, Interrupted: true}
	good.Config.Strategy, bad.Config.Strategy, stopped.Config.Strategy = sim.Sync, sim.Outbox, sim.Async
	text, ok := output.Lookup("text")
	require.True(t, ok)
	for _, tc := range []struct {
		name    string
		reports []sim.Report
		full    int // full reports after the comparison
	}{
		{"all ok", []sim.Report{good, good}, 0},
		{"one failed", []sim.Report{good, bad}, 1},
		{"one failed, one interrupted", []sim.Report{bad, good, stopped}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			require.NoError(t, text.Write(&buf, tc.reports, nil))
			out := buf.String()
			assert.Regexp(t, `^\s+sync|^\s+outbox`, out, "the comparison comes first")
			assert.Equal(t, tc.full, strings.Count(out, "stockbus simulate: "), "full reports in:\n%s", out)
		})
	}

	var one bytes.Buffer
	require.NoError(t, text.Write(&one, []sim.Report{good}, nil))
	assert.True(t, strings.HasPrefix(one.String(), "stockbus simulate: sync dispatch"), "one run: its full report, got:\n%s", one.String())
}

// Every format hands back the writer's error.
func TestFormatsReturnTheWritersError(t *testing.T) {
	r := sim.Report{Config: sim.Default(), OK: true}
	for _, f := range output.Formats() {
		t.Run(f.Name, func(t *testing.T) {
			err := f.Write(failingWriter{}, []sim.Report{r}, nil)
			assert.ErrorIs(t, err, errFull, "%s.Write to a failing writer", f.Name)
		})
	}
}

var errFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errFull }
