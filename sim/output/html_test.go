package output_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
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
	sw, cfgs := sweepPlan(t, "mailer-latency=0,1ms")
	reports := runAll(t, cfgs)

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
	sw, cfgs := sweepPlan(t, "workers=1,2,4")
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

// pageTable returns the cells of the page's table under the heading title, its head row first,
// and whether the page has that table.
func pageTable(t *testing.T, page, title string) ([][]string, bool) {
	t.Helper()
	start := strings.Index(page, "<h2>"+title+"</h2>\n<table>")
	if start < 0 {
		return nil, false
	}
	table := page[start:]
	table = table[:strings.Index(table, "</table>")]
	var rows [][]string
	for _, tr := range regexp.MustCompile(`<tr>(.*?)</tr>`).FindAllStringSubmatch(table, -1) {
		var cells []string
		for _, c := range regexp.MustCompile(`<t[dh]>(.*?)</t[dh]>`).FindAllStringSubmatch(tr[1], -1) {
			cells = append(cells, c[1])
		}
		rows = append(rows, cells)
	}
	return rows, true
}

// textFigures returns the submatches of pattern in the text report of r.
func textFigures(t *testing.T, r sim.Report, pattern string) []string {
	t.Helper()
	out := text(t, r)
	m := regexp.MustCompile(pattern).FindStringSubmatch(out)
	require.NotNil(t, m, "the text report has %s:\n%s", pattern, out)
	return m[1:]
}

// serverMailer is a fake mailer standing for a real one: its own record is its server's.
type serverMailer struct{ *fakes.Mailer }

func (m serverMailer) Mails() []sim.Mail {
	var out []sim.Mail
	for _, ml := range m.Mailer.Mails() {
		out = append(out, sim.Mail{Event: ml.Cause.Identity().ID, To: ml.To, Body: ml.Body})
	}
	return out
}

func openServerMailer(_ context.Context, spec sim.MailerSpec) (sim.Mailer, func() error, error) {
	var opts []fakes.MailerOption
	if spec.Dedup {
		opts = append(opts, fakes.WithDedup())
	}
	return serverMailer{fakes.NewMailer(opts...)}, func() error { return nil }, nil
}

// The page shows the mail sends as the sender timed them when the run sends through a mailer other
// than the fake one, as the text report does, with the text report's figures.
func TestPageShowsMailSendsOnARealMailer(t *testing.T) {
	const title = "Mail sends, as the sender timed them"
	for _, tc := range []struct {
		name string
		real bool
	}{
		{"on the fake mailer, no table", false},
		{"on another mailer, its sends", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tiny()
			if tc.real {
				cfg.OpenMailer, cfg.MailerName = openServerMailer, "server"
			}
			r := run(t, cfg)
			page, _ := renderPage(t, []sim.Report{r}, nil)
			rows, ok := pageTable(t, page, title)
			require.Equal(t, tc.real, ok, "the page has a table %q", title)
			if !tc.real {
				return
			}
			fig := textFigures(t, r, `mailer send +min (\S+)  p50 (\S+)  p90 (\S+)  p99 (\S+)  p99\.9 (\S+)  max (\S+)  \(mean (\S+), n=(\d+)\)`)
			require.Positive(t, r.Mailer.Send.Count, "the run sent mail")
			assert.Equal(t, [][]string{
				{"run", "mailer", "sends", "min", "p50", "p90", "p99", "p99.9", "max", "mean"},
				{cfg.Strategy, "server", fig[7], fig[0], fig[1], fig[2], fig[3], fig[4], fig[5], fig[6]},
			}, rows)
		})
	}
}

// The page shows what the broker did when the run has a broker report, as the text report does,
// with the text report's figures; a run without one has no row.
func TestPageShowsWhatTheBrokerDid(t *testing.T) {
	const title = "What the broker did"
	for _, tc := range []struct {
		name  string
		drops []int
	}{
		{"on the fake broker, no table", nil},
		{"with the connection dropped at publications 3 and 7", []int{3, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tiny()
			cfg.BrokerDrops = tc.drops
			r := run(t, cfg)
			plain := run(t, tiny())
			plain.Config.Strategy = "without a broker report"
			page, _ := renderPage(t, []sim.Report{r, plain}, nil)
			rows, ok := pageTable(t, page, title)
			require.Equal(t, tc.drops != nil, ok, "the page has a table %q", title)
			if tc.drops == nil {
				return
			}
			b := r.Broker
			require.NotNil(t, b)
			require.Equal(t, 2, b.Drops, "both drops fired")
			fig := textFigures(t, r, `broker +\S+: publish p50 (\S+), p99 (\S+) over`)
			assert.Equal(t, [][]string{
				{"run", "broker", "publish p50", "publish p99", "acknowledged", "publications", "failed",
					"re-sent", "dedup hits", "holds", "stored twice", "acknowledged but missing", "connection drops"},
				{cfg.Strategy, b.Name, fig[0], fig[1], fmt.Sprint(b.Publish.Count), fmt.Sprint(b.Publications), fmt.Sprint(b.Errors),
					fmt.Sprint(b.Resent), fmt.Sprint(b.DedupHits), fmt.Sprint(b.Held), fmt.Sprint(b.Duplicated), fmt.Sprint(b.Lost), "2"},
			}, rows)
		})
	}
}
