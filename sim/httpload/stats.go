package httpload

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/sim/hist"
)

// Merged is a histogram of durations merged from the encoded histograms of several processes
// (percentiles cannot be merged; histograms can), with their exact counts and sums added. The
// zero value is not ready: use NewMerged.
type Merged struct {
	h        *hdrhistogram.Histogram
	n, sum   int64
	max      int64
	clamped  int64 // values beyond the merged histogram's range
	approxMx bool  // max is the histogram's (3 significant digits), not an exact one
}

// NewMerged returns an empty merged histogram (1 ns to 1 min, 3 significant digits, as
// httpapi.Meter records).
func NewMerged() *Merged { return &Merged{h: httpapi.NewHistogram()} }

// Add merges e in, or returns an error wrapping httpapi.ErrBadStats (and merges nothing) when it
// does not decode.
func (m *Merged) Add(e httpapi.EncodedHistogram) error {
	h, err := e.Decode()
	if err != nil {
		return err
	}
	m.merge(h, e.Count, e.SumNs, e.MaxNs)
	return nil
}

func (m *Merged) merge(h *hdrhistogram.Histogram, n, sum, mx int64) {
	m.clamped += m.h.Merge(h)
	m.n += n
	m.sum += sum
	m.max = max(m.max, mx)
}

// Count is how many durations were merged.
func (m *Merged) Count() int64 { return m.n }

// Sum is the exact sum of the merged durations.
func (m *Merged) Sum() time.Duration { return time.Duration(m.sum) }

// Quantile is the merged value at percentile q (0 to 100), to 3 significant digits.
func (m *Merged) Quantile(q float64) time.Duration { return time.Duration(m.h.ValueAtQuantile(q)) }

// Dist summarizes the merged durations: quantiles and min to 3 significant digits, count, sum
// and mean exact, max exact unless a baseline was taken off (then the histogram's).
func (m *Merged) Dist() hist.Dist {
	if m.n == 0 {
		return hist.Dist{}
	}
	mx := time.Duration(m.max)
	if m.approxMx {
		mx = time.Duration(m.h.Max())
	}
	return hist.Dist{Count: m.n, Mean: time.Duration(m.sum / m.n), Min: time.Duration(m.h.Min()),
		P50: m.Quantile(50), P90: m.Quantile(90), P99: m.Quantile(99), P999: m.Quantile(99.9), Max: mx}
}

// since returns what after recorded beyond before (the same process's histogram, fetched
// earlier), or after itself when before is empty or not an earlier state of it (the process
// restarted in between).
func since(after, before httpapi.EncodedHistogram) (h *hdrhistogram.Histogram, n, sum int64, exactMax bool, err error) {
	ha, err := after.Decode()
	if err != nil {
		return nil, 0, 0, false, err
	}
	if before.Count == 0 {
		return ha, after.Count, after.SumNs, true, nil
	}
	hb, err := before.Decode()
	if err != nil {
		return nil, 0, 0, false, err
	}
	sa, sb := ha.Export(), hb.Export()
	if len(sa.Counts) != len(sb.Counts) || sa.LowestTrackableValue != sb.LowestTrackableValue || sa.SignificantFigures != sb.SignificantFigures {
		return ha, after.Count, after.SumNs, true, nil
	}
	for i := range sa.Counts {
		if sa.Counts[i] < sb.Counts[i] {
			return ha, after.Count, after.SumNs, true, nil // not an earlier state: a new life
		}
		sa.Counts[i] -= sb.Counts[i]
	}
	return hdrhistogram.Import(sa), after.Count - before.Count, after.SumNs - before.SumNs, false, nil
}

// Server is the servers' side of a run: every instance's GET /stats, taken at the end, less what
// it had recorded when the load began (the seeding, earlier runs), merged across instances.
type Server struct {
	Instances []string  `json:"instances"` // the instances' names, in the order of the targets
	Requests  hist.Dist `json:"requests"`  // each API request's time in the handler
	Dispatch  hist.Dist `json:"dispatch"`  // each API request's time in event handlers after commit
	// DispatchShare is the dispatch time's share of the request time (exact sums).
	DispatchShare float64   `json:"dispatch_share"`
	Relayed       hist.Dist `json:"relayed"` // event handler calls outside any request (outbox relays)
	Restarted     []string  `json:"restarted,omitempty"`
}

// fetchAll fetches every client's stats, a zero Stats where one failed.
func fetchAll(ctx context.Context, clients []*httpapi.Client) []httpapi.Stats {
	out := make([]httpapi.Stats, len(clients))
	for i, c := range clients {
		sctx, cancel := context.WithTimeout(ctx, statsTimeout)
		s, err := c.Stats(sctx)
		cancel()
		if err == nil {
			out[i] = s
		}
	}
	return out
}

// server fetches every target's stats and merges them into the report, less the baseline; on
// any failure it sets StatsError instead, naming the target.
func (r *Report) server(ctx context.Context, clients []*httpapi.Client, baseline []httpapi.Stats) {
	// The run's ctx may have ended (an interrupt): the stats are still worth fetching.
	ctx = context.WithoutCancel(ctx)
	req, disp, rel := NewMerged(), NewMerged(), NewMerged()
	srv := &Server{}
	var errs []error
	for i, c := range clients {
		sctx, cancel := context.WithTimeout(ctx, statsTimeout)
		s, err := c.Stats(sctx)
		cancel()
		if err == nil {
			var b httpapi.Stats
			if i < len(baseline) && baseline[i].Instance == s.Instance {
				b = baseline[i]
			} else if i < len(baseline) && baseline[i].Instance != "" {
				srv.Restarted = append(srv.Restarted, s.Instance)
			}
			err = errors.Join(addSince(req, s.Requests, b.Requests), addSince(disp, s.Dispatch, b.Dispatch),
				addSince(rel, s.Relayed, b.Relayed))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.Targets[i], err))
			continue
		}
		srv.Instances = append(srv.Instances, s.Instance)
	}
	if len(errs) > 0 {
		r.StatsError = "server stats: " + errors.Join(errs...).Error()
		return
	}
	srv.fill(req, disp, rel)
	r.Server = srv
}

// fill sets the figures from the merged histograms.
func (srv *Server) fill(req, disp, rel *Merged) {
	srv.Requests, srv.Dispatch, srv.Relayed = req.Dist(), disp.Dist(), rel.Dist()
	if req.Sum() > 0 {
		srv.DispatchShare = float64(disp.Sum()) / float64(req.Sum())
	}
}

// MergeStats merges the stats of several processes, or of several lives of one (a life killed
// takes its histograms with it: fetch them before), into one Server, or returns the first that
// does not decode (an error wrapping httpapi.ErrBadStats, naming its instance).
func MergeStats(stats []httpapi.Stats) (*Server, error) {
	req, disp, rel := NewMerged(), NewMerged(), NewMerged()
	srv := &Server{}
	for _, s := range stats {
		if err := errors.Join(req.Add(s.Requests), disp.Add(s.Dispatch), rel.Add(s.Relayed)); err != nil {
			return nil, fmt.Errorf("stats of %s: %w", s.Instance, err)
		}
		srv.Instances = append(srv.Instances, s.Instance)
	}
	srv.fill(req, disp, rel)
	return srv, nil
}

func addSince(m *Merged, after, before httpapi.EncodedHistogram) error {
	h, n, sum, exact, err := since(after, before)
	if err != nil {
		return err
	}
	m.merge(h, n, sum, after.MaxNs)
	m.approxMx = m.approxMx || !exact
	return nil
}
