package output

import (
	bytespkg "bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/stockbus/stockbus/sim"
)

// The page's charts are drawn by Apache ECharts 5.6.0, vendored from the npm registry
// (npm pack echarts@5; dist/echarts.min.js, with its LICENSE and NOTICE beside it) and embedded,
// so that a report renders with no network.
//
//go:embed assets/echarts/echarts.min.js
var echartsJS string

// Chart is one chart of an HTML report: its id and its ECharts option, inline in the page.
type Chart struct {
	ID     string
	Title  string
	Option map[string]any
}

// WriteHTML writes one self-contained HTML page for a run, a comparison (several reports) or a
// sweep (sweep non-nil): the text report's table, the sweep's charts, each report's latency
// percentile spectrum, a timeline of throughput and p99 per interval, and the event accounting;
// on a real mailer, the mail sends as the sender timed them; with a broker report, what the broker
// did. The page references nothing outside itself.
func WriteHTML(w io.Writer, reports []sim.Report, sweep *sim.Sweep) error {
	if len(reports) == 0 {
		return fmt.Errorf("no reports to write")
	}
	var table bytespkg.Buffer
	var err error
	switch {
	case sweep != nil:
		err = WriteSweep(&table, reports, *sweep)
	case len(reports) > 1:
		err = WriteComparison(&table, reports, nil)
	default:
		err = WriteText(&table, reports[0])
	}
	if err != nil {
		return err
	}
	charts := HTMLCharts(reports, sweep)
	type chartJSON struct {
		ID     string         `json:"id"`
		Option map[string]any `json:"option"`
	}
	var cj []chartJSON
	for _, c := range charts {
		cj = append(cj, chartJSON{ID: c.ID, Option: c.Option})
	}
	data, err := json.Marshal(cj) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	title, command := "stockbus simulate: "+reports[0].Config.Strategy, reports[0].Command
	if len(reports) > 1 {
		command = "" // each run's own command is in the report below
	}
	if sweep != nil {
		title = "stockbus sweep of " + sweep.Param
	} else if len(reports) > 1 {
		title = "stockbus comparison"
	}
	return pageTemplate.Execute(w, map[string]any{
		"Title":      title,
		"Subtitle":   subtitle(reports[0].Config),
		"Command":    command,
		"Table":      table.String(),
		"Charts":     charts,
		"ChartsJSON": template.JS(data),
		"Accounting": accountingRows(reports, sweep),
		"Tables":     htmlTables(reports, sweep),
		"ECharts":    template.JS(echartsJS),
	})
}

// subtitle is the configuration a page's charts share.
func subtitle(c sim.Config) string {
	return fmt.Sprintf("%s; %s; seed %d", workloadLine(c), loadLine(c), c.Seed)
}

// label names a report on a chart: its strategy, and in a sweep the swept value.
func label(r sim.Report, sweep *sim.Sweep) string {
	if sweep == nil {
		return r.Config.Strategy
	}
	v, _ := sweep.Value(r.Config)
	return r.Config.Strategy + " " + sweep.Param + "=" + v
}

// HTMLCharts returns the charts of the page WriteHTML writes, in order.
func HTMLCharts(reports []sim.Report, sweep *sim.Sweep) []Chart {
	var out []Chart
	sub := subtitle(reports[0].Config)
	if sweep != nil {
		out = append(out, sweepCharts(reports, *sweep, sub)...)
	}
	// The percentile spectrum, as HdrHistogram's plotter draws it: x is 1/(1-q) on a log axis.
	var spec []map[string]any
	for _, r := range reports {
		var pts [][2]float64
		for i, p := range r.Percentiles {
			x := 1 / (1 - p.Percentile/100)
			if p.Percentile >= 100 { // the maximum, a quarter-decade past the last percentile
				x = 1 / (1 - r.Percentiles[i-1].Percentile/100) * math.Pow(10, 0.25)
			}
			pts = append(pts, [2]float64{round3(x), ms(p.Value)})
		}
		spec = append(spec, lineSeries(label(r, sweep), pts))
	}
	out = append(out, Chart{ID: "spectrum", Title: "Latency by percentile", Option: lineOption(
		"Latency by percentile (HdrHistogram spectrum)", sub,
		axis("percentile", "log", true), axis("latency (ms)", "log", false), spec)})

	var tput, p99 []map[string]any
	for _, r := range reports {
		var t, p [][2]float64
		for _, iv := range r.Timeline {
			x := round3(iv.Start.Seconds())
			t = append(t, [2]float64{x, round3(iv.Throughput)})
			if iv.Orders > 0 {
				p = append(p, [2]float64{x, ms(iv.P99)})
			}
		}
		tput = append(tput, lineSeries(label(r, sweep), t))
		p99 = append(p99, lineSeries(label(r, sweep), p))
	}
	out = append(out,
		timelineThroughput(tput, sub),
		Chart{ID: "timeline-p99", Title: "p99 latency over time", Option: lineOption(
			"p99 latency per interval (1 significant digit)", sub, axis("seconds since start", "value", false),
			axis("p99 (ms)", logIfWide(p99), false), p99)},
	)
	return out
}

// timelineThroughput charts orders/s per interval: on a log axis when the strategies differ by
// orders of magnitude, leaving out the intervals in which no order ended (a log axis has no 0).
func timelineThroughput(series []map[string]any, sub string) Chart {
	var positive []map[string]any
	for _, s := range series {
		var pts [][2]float64
		for _, p := range s["data"].([][2]float64) {
			if p[1] > 0 {
				pts = append(pts, p)
			}
		}
		positive = append(positive, lineSeries(s["name"].(string), pts))
	}
	title := "Throughput per interval (warm-up included)"
	if logIfWide(positive) == "log" {
		series, title = positive, title+"; intervals with no order ending left out"
	}
	return Chart{ID: "timeline-throughput", Title: "Throughput over time", Option: lineOption(
		title, sub, axis("seconds since start", "value", false), axis("orders/s", logIfWide(series), false), series)}
}

func sweepCharts(reports []sim.Report, sweep sim.Sweep, sub string) []Chart {
	var strategies []string
	for _, r := range reports {
		if !slices.Contains(strategies, r.Config.Strategy) {
			strategies = append(strategies, r.Config.Strategy)
		}
	}
	x, xName, numeric := sweepX(sweep)
	xType := "category"
	if numeric {
		xType = "value"
	}
	chart := func(id, title, unit string, value func(sim.Report) (float64, bool)) Chart {
		var series []map[string]any
		for _, st := range strategies {
			var pts [][2]float64
			var cats [][2]any
			for i, v := range sweep.Values {
				for _, r := range reports {
					got, _ := sweep.Value(r.Config)
					if r.Config.Strategy != st || !sweep.Same(got, v) {
						continue
					}
					y, ok := value(r)
					if !ok {
						continue
					}
					if numeric {
						pts = append(pts, [2]float64{x[i], y})
					} else {
						cats = append(cats, [2]any{v, y})
					}
				}
			}
			s := lineSeries(st, pts)
			if !numeric {
				s["data"] = cats
			}
			series = append(series, s)
		}
		xa := axis(xName, xType, false)
		if !numeric {
			xa["data"] = sweep.Values
		}
		ya := axis(unit, logIfWide(series), false)
		if id == "sweep-dispatch-share" {
			ya = axis(unit, "value", false) // a share: 0 to 100 reads best on a linear axis
			ya["min"], ya["max"], ya["scale"] = 0, 100, false
		}
		return Chart{ID: id, Title: title, Option: lineOption(title+" vs "+sweep.Param, sub, xa, ya, series)}
	}
	positive := func(v float64) (float64, bool) { return v, v > 0 }
	return []Chart{
		chart("sweep-throughput", "Throughput", "orders/s", func(r sim.Report) (float64, bool) { return positive(round3(r.Throughput.Achieved)) }),
		chart("sweep-p99", "p99 latency", "ms", func(r sim.Report) (float64, bool) { return positive(ms(r.Latency.P99)) }),
		chart("sweep-delivery-lag", "Delivery lag p99", "ms", func(r sim.Report) (float64, bool) { return positive(ms(r.DeliveryLag.P99)) }),
		chart("sweep-dispatch-share", "Dispatch share", "% of request time", func(r sim.Report) (float64, bool) {
			return round3(100 * r.Dispatch.Share), true
		}),
	}
}

// sweepX returns the swept values as numbers (durations in ms) when they all are numbers.
func sweepX(sweep sim.Sweep) (xs []float64, name string, numeric bool) {
	name = sweep.Param
	for _, v := range sweep.Values {
		if sweep.Param == "mailer-latency" {
			l, err := sim.ParseLatency(v)
			if err != nil || l.Dist == "uniform" {
				return nil, name, false
			}
			xs = append(xs, ms(l.Mean))
			name = sweep.Param + " (ms)"
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, name, false
		}
		xs = append(xs, f)
	}
	return xs, name, true
}

// logIfWide picks a log axis when the series' positive values span more than a decade and a half.
func logIfWide(series []map[string]any) string {
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		switch d := s["data"].(type) {
		case [][2]float64:
			for _, p := range d {
				if p[1] <= 0 {
					return "value" // a log axis cannot show 0
				}
				lo, hi = min(lo, p[1]), max(hi, p[1])
			}
		case [][2]any:
			for _, p := range d {
				if y, _ := p[1].(float64); y <= 0 {
					return "value"
				} else {
					lo, hi = min(lo, y), max(hi, y)
				}
			}
		}
	}
	if hi > 0 && hi/lo > 30 {
		return "log"
	}
	return "value"
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func axis(name, typ string, percentile bool) map[string]any {
	a := map[string]any{"name": name, "type": typ, "nameLocation": "middle", "nameGap": 28, "scale": typ == "value"}
	if percentile {
		a["percentileLabels"] = true // the page turns 1/(1-q) back into q
		a["min"], a["max"] = 1, 1e6
	}
	return a
}

func lineSeries(name string, pts [][2]float64) map[string]any {
	return map[string]any{"name": name, "type": "line", "data": pts, "showSymbol": len(pts) <= 30}
}

func lineOption(title, sub string, x, y map[string]any, series []map[string]any) map[string]any {
	return map[string]any{
		"title":     map[string]any{"text": title, "subtext": sub, "left": "center", "subtextStyle": map[string]any{"width": 1080, "overflow": "break", "lineHeight": 14}},
		"tooltip":   map[string]any{"trigger": "axis"},
		"legend":    map[string]any{"top": 78, "type": "scroll"},
		"grid":      map[string]any{"top": 115, "left": 70, "right": 40, "bottom": 50},
		"xAxis":     x,
		"yAxis":     y,
		"series":    series,
		"animation": false,
	}
}

// AccountingRow is one report's line in the page's table of event accounting.
type AccountingRow struct {
	Label string
	sim.Accounting
}

func accountingRows(reports []sim.Report, sweep *sim.Sweep) []AccountingRow {
	var rows []AccountingRow
	for _, r := range reports {
		rows = append(rows, AccountingRow{Label: label(r, sweep), Accounting: r.Accounting})
	}
	return rows
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;margin:1em 2em;color:#222}pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}
.chart{width:1150px;height:440px;margin:1.5em 0}table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}th:first-child,td:first-child{text-align:left}</style>
</head><body>
<h1>{{.Title}}</h1>
<p>{{.Subtitle}}</p>
{{if .Command}}<p><code>{{.Command}}</code></p>{{end}}
{{range .Charts}}<div class="chart" id="{{.ID}}"></div>
{{end}}
<h2>What became of the events</h2>
<table><tr><th>run</th><th>committed</th><th>delivered</th><th>discarded</th><th>lost</th><th>lost in crash</th><th>lost, send failed</th><th>pending</th><th>duplicated mails</th><th>duplicated publications</th></tr>
{{range .Accounting}}<tr><td>{{.Label}}</td><td>{{.Committed}}</td><td>{{.Delivered}}</td><td>{{.Discarded}}</td><td>{{.Lost}}</td><td>{{.LostInCrash}}</td><td>{{.LostSendFailed}}</td><td>{{.Pending}}</td><td>{{.Duplicated}}</td><td>{{.DuplicatedPublished}}</td></tr>
{{end}}</table>
{{range .Tables}}<h2>{{.Title}}</h2>
<table><tr>{{range .Head}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{end}}<h2>Report</h2>
<pre>{{.Table}}</pre>
<script>{{.ECharts}}</script>
<script>
var charts = {{.ChartsJSON}};
charts.forEach(function (c) {
  var x = c.option.xAxis;
  if (x.percentileLabels) {
    x.axisLabel = {formatter: function (v) { return (100 - 100 / v).toPrecision(6).replace(/\.?0+$/, "") + "%"; }};
  }
  echarts.init(document.getElementById(c.id), null, {renderer: "svg"}).setOption(c.option);
});
</script>
</body></html>
`))

// round3 rounds v to 3 significant digits, for the charts' data.
func round3(v float64) float64 {
	f, _ := strconv.ParseFloat(fmt.Sprintf("%.3g", v), 64)
	return f
}
