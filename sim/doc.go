// Package sim is the stockbus load simulator: it runs a seeded workload through the real stack
// (domain, service layer, unit of work, bus) on the fakes and measures what synchronous dispatch
// costs, next to an async queue and a transactional outbox.
//
// A run is a Config handed to Run. The workload (skus, batches, orders) comes from gofakeit,
// seeded, so the same Config sends the same orders; event IDs come from each worker's own
// sequence ("e<worker>-<seq>"), so a one-worker run replays event for event. Each worker keeps
// its own HdrHistograms and logs, merged at the end: there is no lock on the hot path.
//
// What a run observed is a History (every event, send and mail; every order with Config.Record)
// that Check judges against the invariants; the Report carries the figures, the model check and
// the invariants. WriteText, WriteJSON and WriteBench print reports; Sweep and WriteChart compare
// runs. The package knows nothing of flags or terminals: cmd/simulate does the wiring.
package sim
