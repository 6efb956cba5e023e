// Package sim is the stockbus load simulator: it runs a seeded workload through the real stack
// (domain, service layer, unit of work, bus) on the fakes and measures what synchronous dispatch
// costs, next to the book's handler retries, an async queue and a transactional outbox, and what
// each of them loses or duplicates when things fail.
//
// A run is a Config handed to Run. The workload (skus, batches, orders) comes from gofakeit,
// seeded, so the same Config sends the same orders; event IDs come from each worker's own
// sequence ("e<worker>-<seq>"), so a one-worker run replays event for event. Each worker keeps
// its own HdrHistograms and logs, merged at the end: there is no lock on the hot path.
//
// Faults are seeded too: crashes of the whole process at five points (see Point; a crash kills
// every goroutine of the process and what it held in memory, and the process restarts), forced
// version conflicts, mailer errors and timeouts with an unknown outcome, clients that send an
// order again after an unknown outcome, and invalid input. Every run ends with a liveness phase:
// faults off, and what the process still holds drains.
//
// What a run observed is a History (every event, send, mail, publication and crash; every order
// with Config.Record). Account counts from it what became of the events, Jepsen-style: lost,
// duplicated, unexpected, recovered. Check judges it against the invariants and the strategy's
// Promise. The Report carries the figures, the accounting, the model check and the invariants;
// package output (sim/output) writes it as text, JSON, benchmark lines or an HTML page, and Sweep
// plans runs to compare. The plan comes from sim/workload, the histograms from sim/hist, the
// crash plan from sim/faults and the strategies from sim/dispatch (see the layers in
// sim/README.md). The package knows nothing of flags or terminals: cmd/simulate
// does the wiring, and Config.Command gives the command line that reruns a Config.
package sim
