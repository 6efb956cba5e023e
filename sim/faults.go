package sim

import "github.com/stockbus/stockbus/sim/faults"

// The crash plan's types, as the simulator has always named them; see package faults.
type (
	// Point is a place where the simulated process can crash: see faults.Point.
	Point = faults.Point
	// Faults decides where the simulated process crashes: see faults.Plan. Without a Faults in
	// Config, the run uses a seeded plan drawn from Config.Crash.
	Faults = faults.Plan
	// CrashRates is the probability of a crash at each visit of each point: see faults.Rates.
	CrashRates = faults.Rates
	// CrashVisits is a crash plan chosen by count: see faults.Visits.
	CrashVisits = faults.Visits
)

// Crash points, in the order an event meets them: see faults.Point.
const (
	BeforeCommit = faults.BeforeCommit
	AfterCommit  = faults.AfterCommit
	AfterHandler = faults.AfterHandler
	AfterDeliver = faults.AfterDeliver
	RelaySent    = faults.RelaySent
)

// Points lists every crash point, in order.
func Points() []Point { return faults.Points() }

// ParsePoint parses a point's name, e.g. "after-commit".
func ParsePoint(s string) (Point, error) { return faults.ParsePoint(s) }

// ParseCrashRates parses "point=p,point=p", e.g. "after-commit=0.05,relay-sent=0.1"; "" and
// "none" are no crashes.
func ParseCrashRates(s string) (CrashRates, error) { return faults.ParseRates(s) }

// ParseCrashVisits parses "point=n/n/...,point=n", e.g. "relay-sent=600/700,after-commit=5";
// "" and "none" are no crashes. Visits are counted from 1 and must be distinct.
func ParseCrashVisits(s string) (CrashVisits, error) { return faults.ParseVisits(s) }
