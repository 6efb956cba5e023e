package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// ErrBadStats is wrapped by the error of a stats answer that cannot be read: not the JSON of
// Stats, or a histogram that does not decode or disagrees with its own count.
var ErrBadStats = errors.New("bad stats")

// Stats is the body of a 200 to GET /stats (served by a Meter): what one API process measured
// since it started. Histograms, not percentiles, so that a client can merge the stats of several
// processes (percentiles cannot be merged).
type Stats struct {
	Instance string           `json:"instance"` // the process's name, as it chose it
	Requests EncodedHistogram `json:"requests"` // each API request's time in the handler, to its answer
	// Dispatch is each API request's time in event handlers after its commit, inside the
	// request: all of its mails and publications under synchronous dispatch, 0 when it had no
	// event or the outbox's relays handle them.
	Dispatch EncodedHistogram `json:"dispatch"`
	// Relayed is each event handler call outside any request (an outbox relay's mail or
	// publication).
	Relayed EncodedHistogram `json:"relayed"`
}

// EncodedHistogram is a histogram of durations in nanoseconds (1 ns to 1 min, 3 significant
// digits; longer ones count as 1 min) as hdrhistogram-go's Encode writes it (V2, compressed,
// base64), with the exact count, sum and max beside it, which the encoding does not keep.
type EncodedHistogram struct {
	Count int64  `json:"count"`
	SumNs int64  `json:"sum_ns"`
	MaxNs int64  `json:"max_ns"`
	HDR   string `json:"hdr"`
}

// Decode returns the histogram e carries, or an error wrapping ErrBadStats when it does not
// decode or holds another number of values than Count.
func (e EncodedHistogram) Decode() (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(e.HDR))
	if err != nil {
		return nil, fmt.Errorf("%w: histogram: %w", ErrBadStats, err)
	}
	if h.TotalCount() != e.Count {
		return nil, fmt.Errorf("%w: histogram holds %d values, count says %d", ErrBadStats, h.TotalCount(), e.Count)
	}
	if e.Count < 0 || e.SumNs < 0 || e.MaxNs < 0 {
		return nil, fmt.Errorf("%w: negative count, sum or max", ErrBadStats)
	}
	return h, nil
}

// histMax is the longest duration a Meter's histograms tell apart.
const histMax = int64(time.Minute)

// NewHistogram returns an empty histogram of the geometry a Meter records in (1 ns to 1 min, 3
// significant digits), to merge decoded ones into.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, histMax, 3) }

// recorder is a histogram many goroutines record into, behind a lock (a record is tens of
// nanoseconds; requests take microseconds at least).
type recorder struct {
	mu       sync.Mutex
	h        *hdrhistogram.Histogram
	sum, max int64
}

func (r *recorder) record(d time.Duration) {
	v := max(int64(d), 0)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		r.h = NewHistogram()
	}
	_ = r.h.RecordValue(min(v, histMax))
	r.sum += v
	r.max = max(r.max, v)
}

func (r *recorder) encode() (EncodedHistogram, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.h == nil {
		r.h = NewHistogram()
	}
	b, err := r.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return EncodedHistogram{}, err
	}
	return EncodedHistogram{Count: r.h.TotalCount(), SumNs: r.sum, MaxNs: r.max, HDR: string(b)}, nil
}

// Meter measures an API process: Wrap times each request and gives it a dispatch clock,
// Middleware times the bus's event handlers into the clock of the request they run in (or as
// relayed when they run in none), and ServeHTTP answers GET /stats with the Stats. It is safe for
// concurrent use; its zero value is not (use NewMeter).
type Meter struct {
	name                        string
	requests, dispatch, relayed recorder
}

// NewMeter returns a meter whose Stats carry instance as their Instance.
func NewMeter(instance string) *Meter { return &Meter{name: instance} }

// dispatchClock is one request's time in event handlers. depth keeps a handler that runs inside
// another (an event of a command an event handler sent) from being counted twice.
type dispatchClock struct {
	depth atomic.Int32
	total atomic.Int64
}

type clockKey struct{}

// Wrap returns h timed: each request's time from the call to its return is recorded, and so is
// its dispatch time, which the handlers that Middleware wraps add up while it runs.
func (m *Meter) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clock := &dispatchClock{}
		start := time.Now()
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clockKey{}, clock)))
		m.requests.record(time.Since(start))
		m.dispatch.record(time.Duration(clock.total.Load()))
	})
}

// Middleware returns the bus middleware that times event handlers; it should be the outermost,
// so that the time includes any retries inside it.
func (m *Meter) Middleware() service.Middleware {
	return func(next service.HandlerFunc) service.HandlerFunc {
		return func(ctx context.Context, e domain.Event) error {
			clock, _ := ctx.Value(clockKey{}).(*dispatchClock)
			if clock == nil {
				start := time.Now()
				err := next(ctx, e)
				m.relayed.record(time.Since(start))
				return err
			}
			if clock.depth.Add(1) > 1 {
				defer clock.depth.Add(-1)
				return next(ctx, e)
			}
			start := time.Now()
			err := next(ctx, e)
			clock.total.Add(int64(time.Since(start)))
			clock.depth.Add(-1)
			return err
		}
	}
}

// Stats returns what the meter recorded so far.
func (m *Meter) Stats() (Stats, error) {
	s := Stats{Instance: m.name}
	var errs [3]error
	s.Requests, errs[0] = m.requests.encode()
	s.Dispatch, errs[1] = m.dispatch.encode()
	s.Relayed, errs[2] = m.relayed.encode()
	return s, errors.Join(errs[:]...)
}

// ServeHTTP answers GET /stats (any method but GET or HEAD is a 405) with the Stats as JSON.
func (m *Meter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, ErrorResponse{Message: "method " + r.Method + " not allowed: want GET"})
		return
	}
	s, err := m.Stats()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// Stats fetches GET /stats: a Meter's Stats. An answer other than a 200 is a *StatusError; one
// that is not the JSON of Stats, or whose histograms do not decode, an error wrapping
// ErrBadStats.
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.statsURL, nil)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxStatsBytes))
	if err != nil {
		return Stats{}, fmt.Errorf("stats: reading the %d answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return Stats{}, statusError("stats", resp.StatusCode, resp.Header.Get("Content-Type"), answer)
	}
	var s Stats
	if err := json.Unmarshal(answer, &s); err != nil {
		return Stats{}, fmt.Errorf("stats: %w: not the JSON of Stats: %w", ErrBadStats, err)
	}
	for name, e := range map[string]EncodedHistogram{"requests": s.Requests, "dispatch": s.Dispatch, "relayed": s.Relayed} {
		if _, err := e.Decode(); err != nil {
			return Stats{}, fmt.Errorf("stats: %s: %w", name, err)
		}
	}
	return s, nil
}

// maxStatsBytes bounds a stats answer: three compressed histograms are a few kilobytes.
const maxStatsBytes = 4 << 20
