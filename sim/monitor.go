package sim

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory is what the run cost in memory. The store keeps every allocated line and the fake
// mailer every mail, so the heap grows with orders; the simulator's own records are HistoryBytes.
type Memory struct {
	HeapBefore    uint64  `json:"heap_before_bytes"`     // live heap after seeding, before the first order
	HeapAfter     uint64  `json:"heap_after_bytes"`      // live heap after the run, before checking
	PerOrder      float64 `json:"bytes_per_order"`       // (after - before) / orders sent
	AllocPerOrder float64 `json:"alloc_bytes_per_order"` // bytes allocated per order, garbage included
	PeakHeap      uint64  `json:"peak_heap_bytes"`       // largest heap seen during the run, sampled every 10 ms
	PeakRSS       uint64  `json:"peak_rss_bytes"`        // the process's peak resident set so far (Linux VmHWM)
	HistoryBytes  uint64  `json:"history_bytes"`         // of the heap, the simulator's own records
}

type memSample struct{ heap, total uint64 }

func readMemory() memSample {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{heap: ms.HeapAlloc, total: ms.TotalAlloc}
}

func memoryReport(before, after memSample, peak uint64, orders int64, history uint64) Memory {
	m := Memory{HeapBefore: before.heap, HeapAfter: after.heap, PeakHeap: max(peak, after.heap), PeakRSS: peakRSS(), HistoryBytes: history}
	if orders > 0 {
		m.PerOrder = (float64(after.heap) - float64(before.heap)) / float64(orders)
		m.AllocPerOrder = float64(after.total-before.total) / float64(orders)
	}
	return m
}

func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// monitor samples the run every 10 ms: the number of orders in the system (for Little's law),
// the heap (for the peak), and progress for the caller.
type monitor struct {
	r        *run
	quit     chan struct{}
	wg       sync.WaitGroup
	inWindow atomic.Bool
	peakHeap atomic.Uint64

	sum     float64 // owned by the monitor goroutine until stop returns
	samples int
}

func startMonitor(r *run) *monitor {
	m := &monitor{r: r, quit: make(chan struct{})}
	m.inWindow.Store(true)
	m.wg.Go(m.loop)
	return m
}

func (m *monitor) loop() {
	r := m.r
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var total int64
	if r.cfg.Duration == 0 {
		total = int64(r.cfg.Orders)
	}
	for n := 1; ; n++ {
		select {
		case <-m.quit:
			return
		case <-tick.C:
		}
		var started, done int64
		for _, w := range r.workers {
			started += w.progress.started.Load()
			done += w.progress.done.Load()
		}
		if ws, we := r.load.Window.Start.Load(), r.load.Window.End.Load(); m.inWindow.Load() && ws >= 0 && int64(r.now()) >= ws && we < 0 {
			inSystem := started - done
			if r.cfg.Model == Open {
				inSystem = r.load.Enqueued.Load() - done
			}
			m.sum += float64(inSystem)
			m.samples++
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if v := sample[0].Value.Uint64(); v > m.peakHeap.Load() {
				m.peakHeap.Store(v)
			}
		}
		if r.cfg.Progress != nil && n%10 == 0 {
			r.cfg.Progress(Progress{Done: done, Total: total, Elapsed: r.now(), Limit: r.cfg.Duration})
		}
	}
}

func (m *monitor) windowDone() { m.inWindow.Store(false) }

func (m *monitor) stop() {
	close(m.quit)
	m.wg.Wait()
}

func (m *monitor) meanInFlight() float64 {
	if m.samples == 0 {
		return 0
	}
	return m.sum / float64(m.samples)
}
