package output_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

type pageChart struct {
	ID     string `json:"id"`
	Option struct {
		Title struct {
			Text    string `json:"text"`
			Subtext string `json:"subtext"`
		} `json:"title"`
		XAxis  map[string]any `json:"xAxis"`
		YAxis  map[string]any `json:"yAxis"`
		Series []struct {
			Name string            `json:"name"`
			Data []json.RawMessage `json:"data"`
		} `json:"series"`
	} `json:"option"`
}

var chartsLine = regexp.MustCompile(`(?m)^var charts = (.*);$`)

// renderPage writes the page and reads back the charts it holds inline.
func renderPage(t *testing.T, reports []sim.Report, sweep *sim.Sweep) (string, map[string]pageChart) {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, output.WriteHTML(&buf, reports, sweep))
	page := buf.String()
	m := chartsLine.FindStringSubmatch(page)
	require.NotNil(t, m, "the page holds its charts' data inline")
	var list []pageChart
	require.NoError(t, json.Unmarshal([]byte(m[1]), &list))
	charts := map[string]pageChart{}
	for _, c := range list {
		assert.Contains(t, page, `<div class="chart" id="`+c.ID+`">`, "chart %s has its place on the page", c.ID)
		charts[c.ID] = c
	}
	return page, charts
}

// assertDrawn fails on a chart with a missing series, or a series with no point to draw.
func assertDrawn(t *testing.T, c pageChart, series ...string) {
	t.Helper()
	var names []string
	for _, s := range c.Option.Series {
		names = append(names, s.Name)
		assert.NotEmpty(t, s.Data, "chart %s: series %q has no points", c.ID, s.Name)
		for _, d := range s.Data {
			var p []any
			require.NoError(t, json.Unmarshal(d, &p), "chart %s: point %s", c.ID, d)
			require.Len(t, p, 2)
			y, ok := p[1].(float64)
			assert.True(t, ok && !math.IsNaN(y) && !math.IsInf(y, 0), "chart %s: series %q point %s", c.ID, s.Name, d)
			if c.Option.YAxis["type"] == "log" {
				assert.Positive(t, y, "chart %s: a log axis cannot show %s", c.ID, d)
			}
		}
	}
	assert.ElementsMatch(t, series, names, "chart %s", c.ID)
}

// assertOffline fails on any URL outside the embedded library's licence comments.
func assertOffline(t *testing.T, page string) {
	t.Helper()
	assert.Contains(t, page, "Licensed to the Apache Software Foundation", "ECharts is inline, with its licence")
	assert.NotRegexp(t, `(?i)(src|href)\s*=\s*["']?\s*(https?:)?//`, page, "nothing loaded from elsewhere")
	lib := page[strings.Index(page, "<script>")+len("<script>"):]
	lib = lib[:strings.Index(lib, "</script>")]
	rest := strings.Replace(page, lib, "", 1)
	assert.NotRegexp(t, `https?://`, rest, "no URL outside the library")
	for _, u := range regexp.MustCompile(`https?://[^\s"'()]+`).FindAllString(lib, -1) {
		assert.Regexp(t, `^http://(www\.apache\.org/licenses|www\.w3\.org/)|^https://github\.com/ecomfe/zrender/blob/master/LICENSE`, u,
			"the library names only its licences and XML namespaces")
	}
}

func TestSweepPageChartsEveryMeasureOnANumericAxis(t *testing.T) {
	sw, err := sim.ParseSweep("mailer-latency=0,1ms")
	require.NoError(t, err)
	cfgs, err := sw.Plan(tiny(), []string{sim.Sync, sim.Async})
	require.NoError(t, err)
	reports, err := sim.RunAll(t.Context(), cfgs)
	require.NoError(t, err)

	page, charts := renderPage(t, reports, &sw)
	assertOffline(t, page)
	for _, id := range []string{"sweep-throughput", "sweep-p99", "sweep-delivery-lag", "sweep-dispatch-share"} {
		require.Contains(t, charts, id)
		c := charts[id]
		assertDrawn(t, c, sim.Sync, sim.Async)
		assert.Equal(t, "value", c.Option.XAxis["type"], "%s: the swept latency is a number, spaced as such", id)
		assert.Contains(t, c.Option.Title.Subtext, fmt.Sprintf("seed %d", cfgs[0].Seed), "%s names the seed", id)
	}
	for _, id := range []string{"spectrum", "timeline-throughput", "timeline-p99"} {
		require.Contains(t, charts, id)
		assertDrawn(t, charts[id], "sync mailer-latency=0s", "sync mailer-latency=1ms", "async mailer-latency=0s", "async mailer-latency=1ms")
	}
	assert.Contains(t, page, "mailer-latency  strategy", "the text table is on the page")
}

func TestRunPageShowsSpectrumTimelineAndAccounting(t *testing.T) {
	cfg := tiny()
	cfg.Strategy, cfg.Crash.AfterCommit, cfg.MailErrors = sim.Outbox, 0.05, 0.1
	r := run(t, cfg)
	page, charts := renderPage(t, []sim.Report{r}, nil)
	assertOffline(t, page)
	assert.NotContains(t, charts, "sweep-throughput")
	spec := charts["spectrum"]
	assertDrawn(t, spec, sim.Outbox)
	assert.Equal(t, "log", spec.Option.XAxis["type"], "percentiles on HdrHistogram's log axis")
	assert.Equal(t, "log", spec.Option.YAxis["type"])
	assertDrawn(t, charts["timeline-throughput"], sim.Outbox)
	assertDrawn(t, charts["timeline-p99"], sim.Outbox)
	assert.Contains(t, page, "What became of the events")
	assert.Contains(t, page, fmt.Sprintf(`<td>outbox</td><td>%d</td><td>%d</td>`, r.Accounting.Committed, r.Accounting.Delivered))
}

func TestSweepAxesAreLogOnlyWhenValuesSpanDecades(t *testing.T) {
	sw, err := sim.ParseSweep("workers=1,2,4")
	require.NoError(t, err)
	cfgs, err := sw.Plan(tiny(), []string{sim.Sync, sim.Async})
	require.NoError(t, err)
	for _, tc := range []struct {
		name       string
		sync, asyn float64 // orders/s
		want       string
	}{
		{"sync 3,375 against async 190k", 3375, 190_000, "log"},
		{"within a factor of 3", 1000, 3000, "value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reports []sim.Report
			for _, c := range cfgs {
				r := sim.Report{Config: c}
				r.Throughput.Achieved = tc.sync
				if c.Strategy == sim.Async {
					r.Throughput.Achieved = tc.asyn
				}
				reports = append(reports, r)
			}
			for _, c := range output.HTMLCharts(reports, &sw) {
				if c.ID == "sweep-throughput" {
					assert.Equal(t, tc.want, c.Option["yAxis"].(map[string]any)["type"])
					assert.Equal(t, "value", c.Option["xAxis"].(map[string]any)["type"], "workers are numbers")
					return
				}
			}
			t.Fatal("no throughput chart")
		})
	}
}
